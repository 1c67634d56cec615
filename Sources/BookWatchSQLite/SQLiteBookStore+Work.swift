import BookWatchCore
import BookWatchStore
import Foundation
import GRDB

extension SQLiteBookStore {
    /// Polls due by `now`, urgent ones first, then the most overdue: from the `books_due_poll`
    /// index, never a scan of all Books. Reads only (the benchmark's query); the watcher claims.
    public func duePolls(now: Date, limit: Int) async throws -> [DuePoll] {
        let t = now.storageMillis
        return try await read { db in
            let urgent = try db.run(PollStatements.due(urgent: true, now: t, limit: limit, excluding: [], claiming: false))
                .compactMap(DuePoll.init(row:))
            guard urgent.count < limit else { return urgent }
            return urgent
                + (try db.run(PollStatements.due(urgent: false, now: t, limit: limit - urgent.count, excluding: [], claiming: false))
                    .compactMap(DuePoll.init(row:)))
        }
    }
}
