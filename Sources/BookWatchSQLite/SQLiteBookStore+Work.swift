import BookWatchCore
import BookWatchStore
import Foundation
import GRDB

extension SQLiteBookStore {
    /// The uuid of the tracked Book with this pk, if any.
    public func uuid(forPK pk: Int) async throws -> BookUUID? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT uuid FROM books WHERE pk = ? ORDER BY untracked_at IS NOT NULL LIMIT 1", arguments: [pk]).flatMap {
                BookUUID($0)
            }
        }
    }

    /// Polls due by `now`, urgent ones first, then the most overdue: from the `books_due_poll`
    /// index, never a scan of all Books. Reads only (the benchmark's query); the watcher claims.
    public func duePolls(now: Date, limit: Int) async throws -> [DuePoll] {
        try await read { db in try Self.duePolls(db, now: now, limit: limit, excluding: []) }
    }

    static func duePolls(_ db: Database, now: Date, limit: Int, excluding: Set<BookUUID>) throws -> [DuePoll] {
        // Two index walks, urgent first, each stopping at `limit` rows: one ORDER BY over both
        // kinds sorted every due row (a full temporary B-tree when a backlog built up).
        let skip = excluding.map(\.rawValue)
        let notIn = skip.isEmpty ? "" : "AND uuid NOT IN (\(databaseQuestionMarks(count: skip.count)))"
        func fetch(_ sql: String, _ limit: Int) throws -> [DuePoll] {
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments([now.storageMillis] + skip + [limit])).compactMap { row in
                guard let uuid = BookUUID(row["uuid"] as String) else { return nil }
                return DuePoll(
                    bookUUID: uuid,
                    reason: (row["poll_reason"] as String?).flatMap(PollReason.init(rawValue:)),
                    dueAt: Date(storageMillis: row["next_poll_at"]),
                    failures: row["poll_failures"]
                )
            }
        }
        let urgent = try fetch(
            """
            SELECT uuid, poll_reason, next_poll_at, poll_failures FROM books INDEXED BY books_urgent_poll
            WHERE poll_reason IS NOT NULL AND next_poll_at <= ? \(notIn) ORDER BY next_poll_at LIMIT ?
            """,
            limit
        )
        guard urgent.count < limit else { return urgent }
        return urgent
            + (try fetch(
                """
                SELECT uuid, poll_reason, next_poll_at, poll_failures FROM books INDEXED BY books_due_poll
                WHERE next_poll_at IS NOT NULL AND next_poll_at <= ? AND poll_reason IS NULL \(notIn) ORDER BY next_poll_at LIMIT ?
                """,
                limit - urgent.count
            ))
    }

    public func claimDuePolls(now: Date, limit: Int, lease: TimeInterval, excluding: Set<BookUUID>) async throws -> [DuePoll] {
        try await write { db in
            let due = try Self.duePolls(db, now: now, limit: limit, excluding: excluding)
            let until = now.addingTimeInterval(lease).storageMillis
            let claim = try db.cachedStatement(sql: "UPDATE books SET next_poll_at = ?, poll_claimed_at = ? WHERE uuid = ?")
            return try due.map { poll in
                try claim.execute(arguments: [until, now.storageMillis, poll.bookUUID.rawValue])
                var claimed = poll
                claimed.claimedAt = Date(storageMillis: now.storageMillis)
                return claimed
            }
        }
    }

    /// The earliest scheduled poll, if any.
    public func nextPollAt() async throws -> Date? {
        try await read { db in
            try Int64.fetchOne(db, sql: "SELECT MIN(next_poll_at) FROM books WHERE next_poll_at IS NOT NULL").map(Date.init(storageMillis:))
        }
    }

    /// Asks for a poll of a tracked Book at `at` (earlier than any scheduled one) for `reason`.
    public func requestPoll(_ uuid: BookUUID, at: Date, reason: PollReason) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE books SET next_poll_at = MIN(COALESCE(next_poll_at, ?), ?), poll_reason = ?, poll_claimed_at = NULL
                    WHERE uuid = ? AND state != 'deleted' AND untracked_at IS NULL
                    """,
                arguments: [at.storageMillis, at.storageMillis, reason.rawValue, uuid.rawValue]
            )
        }
    }

    /// When webhooks turn silent or lossy, polls set while they were trusted would otherwise wait
    /// up to the maximum interval (finished Books: far longer): see `BookStore.tightenPolls`.
    @discardableResult
    public func tightenPolls(now: Date) async throws -> Int {
        let schedule = schedule
        let random = random
        return try await write { db in
            let limits = BooksTable.tighteningLimits(now: now, schedule: schedule)
            let candidates = try Row.fetchAll(
                db,
                sql: "SELECT uuid, state, next_poll_at FROM books WHERE \(BooksTable.tighteningCondition("?", "?"))",
                arguments: [limits.active, limits.finished]
            )
            .map { (row: Row) -> (String, String, Int64) in (row["uuid"], row["state"], row["next_poll_at"]) }
            let moves = BooksTable.tightened(candidates, now: now, schedule: schedule, random: random)
            let update = try db.cachedStatement(sql: "UPDATE books SET next_poll_at = ? WHERE uuid = ?")
            for move in moves { try update.execute(arguments: [move.next, move.uuid]) }
            return moves.count
        }
    }

    /// After a failed poll: the next one at `until`, the failure counted, urgency kept only for the first retry.
    public func deferPoll(_ uuid: BookUUID, until: Date, keepUrgent: Bool) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE books SET next_poll_at = ?, poll_claimed_at = NULL, poll_failures = poll_failures + 1,
                        poll_reason = CASE WHEN ? THEN poll_reason ELSE NULL END
                    WHERE uuid = ? AND next_poll_at IS NOT NULL
                    """,
                arguments: [until.storageMillis, keepUrgent, uuid.rawValue]
            )
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
