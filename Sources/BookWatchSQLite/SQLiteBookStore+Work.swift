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

extension SQLiteBookStore {
    public func prune(before: Date, limit: Int) async throws -> PruneCounts {
        let t = before.storageMillis
        return try await write { db in
            var counts = PruneCounts()
            try db.execute(
                sql: """
                    DELETE FROM webhook_inbox WHERE id IN (
                        SELECT id FROM webhook_inbox WHERE processed_at IS NOT NULL AND processed_at < ? ORDER BY processed_at LIMIT ?)
                    """,
                arguments: [t, limit]
            )
            counts.deliveries = db.changesCount
            try db.execute(
                sql: """
                    DELETE FROM notifications WHERE rowid IN (
                        SELECT rowid FROM notifications WHERE delivered_at IS NOT NULL AND delivered_at < ? LIMIT ?)
                    """,
                arguments: [t, limit]
            )
            counts.notifications = db.changesCount
            try db.execute(
                sql: """
                    DELETE FROM analytics_jobs WHERE id IN (
                        SELECT j.id FROM analytics_jobs j WHERE j.state IN ('complete', 'superseded') AND j.completed_at < ?
                        AND j.generation < (SELECT MAX(k.generation) FROM analytics_jobs k WHERE k.book_uuid = j.book_uuid) LIMIT ?)
                    """,
                arguments: [t, limit]
            )
            counts.jobs = db.changesCount
            return counts
        }
    }
}

extension SQLiteBookStore {
    public func sharedState(_ key: String) async throws -> String? {
        try await read { db in try String.fetchOne(db, sql: "SELECT value FROM deployment_state WHERE key = ?", arguments: [key]) }
    }

    @discardableResult
    public func updateSharedState(_ key: String, at now: Date, _ transform: @escaping @Sendable (String?) -> String) async throws -> String {
        try await write { db in
            let current = try String.fetchOne(db, sql: "SELECT value FROM deployment_state WHERE key = ?", arguments: [key])
            let next = transform(current)
            try db.execute(
                sql: """
                    INSERT INTO deployment_state (key, value, updated_at) VALUES (?, ?, ?)
                    ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                    """,
                arguments: [key, next, now.storageMillis]
            )
            return next
        }
    }
}
