import BookWatchCore
import BookWatchStore
import Foundation
import GRDB

extension SQLiteBookStore {
    /// Runs the transition `TransitionDriver` decides, statement by statement, in one write
    /// transaction (SQLite's single writer serialises every Book's transitions).
    public func apply(
        _ input: BookInput,
        to uuid: BookUUID,
        at now: Date,
        options: TransitionOptions = .init()
    )
        async throws -> TransitionOutcome?
    {
        let driver = TransitionDriver(input, uuid: uuid, now: now, options: options, draw: random(), schedule: schedule)
        return try await write { db in
            var driver = driver
            return try db.drive(&driver)
        }
    }
}
