import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import PostgresNIO

extension PostgresBookStore {
    // MARK: polls

    public func uuid(forPK pk: Int) async throws -> BookUUID? {
        try await scalar("SELECT uuid AS v FROM books WHERE pk = \(pk) ORDER BY untracked_at IS NOT NULL LIMIT 1", as: String.self)
            .flatMap { BookUUID($0) }
    }

    public func claimDuePolls(now: Date, limit: Int, lease: TimeInterval, excluding: Set<BookUUID>) async throws -> [DuePoll] {
        let skip = excluding.map(\.rawValue)
        let t = now.storageMillis
        return try await transaction { c in
            // Urgent first, then the most overdue; rows another replica is claiming are skipped.
            func due(_ query: PostgresQuery) async throws -> [DuePoll] {
                try await Self.rows(c, query, self.logger).compactMap { row in
                    guard let uuid = BookUUID(try row.value("uuid", as: String.self)) else { return nil }
                    return DuePoll(
                        bookUUID: uuid,
                        reason: (try row.value("poll_reason", as: String?.self)).flatMap(PollReason.init(rawValue:)),
                        dueAt: Date(storageMillis: try row.value("next_poll_at")),
                        claimedAt: Date(storageMillis: t),
                        failures: try row.value("poll_failures")
                    )
                }
            }
            var claimed = try await due(
                """
                SELECT uuid, poll_reason, next_poll_at, poll_failures FROM books
                WHERE poll_reason IS NOT NULL AND next_poll_at <= \(t) AND NOT (uuid = ANY(\(skip)))
                ORDER BY next_poll_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """
            )
            if claimed.count < limit {
                claimed += try await due(
                    """
                    SELECT uuid, poll_reason, next_poll_at, poll_failures FROM books
                    WHERE next_poll_at IS NOT NULL AND next_poll_at <= \(t) AND poll_reason IS NULL AND NOT (uuid = ANY(\(skip)))
                    ORDER BY next_poll_at LIMIT \(limit - claimed.count) FOR UPDATE SKIP LOCKED
                    """
                )
            }
            guard !claimed.isEmpty else { return [] }
            try await c.query(
                """
                UPDATE books SET next_poll_at = \(now.addingTimeInterval(lease).storageMillis), poll_claimed_at = \(t)
                WHERE uuid = ANY(\(claimed.map(\.bookUUID.rawValue)))
                """,
                logger: self.logger
            )
            return claimed
        }
    }

    public func nextPollAt() async throws -> Date? {
        try await scalar("SELECT MIN(next_poll_at) AS v FROM books WHERE next_poll_at IS NOT NULL", as: Int64.self)
            .map(Date.init(storageMillis:))
    }

    public func requestPoll(_ uuid: BookUUID, at: Date, reason: PollReason) async throws {
        let t = at.storageMillis
        _ = try await connection { c in
            try await c.query(
                """
                UPDATE books SET next_poll_at = LEAST(COALESCE(next_poll_at, \(t)), \(t)), poll_reason = \(reason.rawValue),
                    poll_claimed_at = NULL
                WHERE uuid = \(uuid.rawValue) AND state <> 'deleted' AND untracked_at IS NULL
                """,
                logger: self.logger
            )
        }
    }

    public func deferPoll(_ uuid: BookUUID, until: Date, keepUrgent: Bool) async throws {
        _ = try await connection { c in
            try await c.query(
                """
                UPDATE books SET next_poll_at = \(until.storageMillis), poll_claimed_at = NULL, poll_failures = poll_failures + 1,
                    poll_reason = CASE WHEN \(keepUrgent) THEN poll_reason ELSE NULL END
                WHERE uuid = \(uuid.rawValue) AND next_poll_at IS NOT NULL
                """,
                logger: self.logger
            )
        }
    }

    @discardableResult
    public func tightenPolls(now: Date) async throws -> Int {
        let schedule = schedule
        let random = random
        return try await transaction { c in
            // Exactly the rows that move, locked as read in uuid order (two replicas tightening at
            // once queue instead of deadlocking), so no transition changes them before the update.
            let limits = BooksTable.tighteningLimits(now: now, schedule: schedule)
            var query = PostgresQuery(
                unsafeSQL: "SELECT uuid, state, next_poll_at FROM books WHERE \(BooksTable.tighteningCondition("$1", "$2")) "
                    + "ORDER BY uuid FOR UPDATE"
            )
            try query.binds.append(limits.active, context: .default)
            try query.binds.append(limits.finished, context: .default)
            let candidates = try await Self.rows(c, query, self.logger).map { row -> (String, String, Int64) in
                (try row.value("uuid"), try row.value("state"), try row.value("next_poll_at"))
            }
            let moves = BooksTable.tightened(candidates, now: now, schedule: schedule, random: random)
            guard !moves.isEmpty else { return 0 }
            _ = try await c.query(
                """
                UPDATE books b SET next_poll_at = m.next
                FROM unnest(\(moves.map(\.uuid))::text[], \(moves.map(\.next))::bigint[]) AS m(uuid, next)
                WHERE b.uuid = m.uuid
                """,
                logger: self.logger
            )
            return moves.count
        }
    }
}
