import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import PostgresNIO

extension PostgresBookStore {
    /// Runs the transition `TransitionDriver` decides, statement by statement, in one transaction
    /// (the Book's row lock serialises its transitions across replicas).
    public func apply(
        _ input: BookInput,
        to uuid: BookUUID,
        at now: Date,
        options: TransitionOptions
    ) async throws
        -> TransitionOutcome?
    {
        let driver = TransitionDriver(input, uuid: uuid, now: now, options: options, draw: random(), schedule: schedule)
        return try await transaction { c in
            var driver = driver
            return try await Self.drive(&driver, on: c, self.logger)
        }
    }

    /// The documents of several Books, in position order, by Book.
    static func documents(_ c: PostgresConnection, of keys: [String], _ logger: Logger) async throws -> [String: [StoredDocument]] {
        var documents: [String: [StoredDocument]] = [:]
        for row in try await run(TransitionDriver.readDocuments(keys), on: c, logger) {
            documents[try row.string("book_uuid"), default: []].append(try StoredDocument(row: row))
        }
        return documents
    }
}
