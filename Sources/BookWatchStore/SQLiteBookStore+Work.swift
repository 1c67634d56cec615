import BookWatchCore
import Foundation
import GRDB

/// An analytics job claimed by a worker, with its lease.
public struct ClaimedJob: Sendable, Equatable {
    public var bookUUID: BookUUID
    public var generation: Int
    /// Real errors so far (5xx, timeouts...): waiting on 425 or on a fresh view is not an attempt.
    public var attempts: Int
    public var leaseExpiresAt: Date
    /// When the job was opened: the moment the Book was seen finished.
    public var openedAt: Date
    /// The claim every write for this job is fenced by.
    public var claim: JobClaim
    /// The job was made due by a status answer confirming the finish: it runs on that view.
    public var viewConfirmed: Bool

    public init(
        bookUUID: BookUUID, generation: Int, attempts: Int, leaseExpiresAt: Date, openedAt: Date,
        claim: JobClaim = JobClaim(owner: "", token: 0), viewConfirmed: Bool = false
    ) {
        self.claim = claim
        self.viewConfirmed = viewConfirmed
        self.bookUUID = bookUUID
        self.generation = generation
        self.attempts = attempts
        self.leaseExpiresAt = leaseExpiresAt
        self.openedAt = openedAt
    }
}

/// A Book whose poll is due (and, from `claimDuePolls`, claimed).
public struct DuePoll: Sendable, Equatable {
    public var bookUUID: BookUUID
    /// Set for urgent polls (webhook hint, operator, startup); nil for scheduled ones.
    public var reason: PollReason?
    public var dueAt: Date
    /// When the poll was claimed: hand it back as `TransitionOptions.pollClaim`.
    public var claimedAt: Date?
    /// Status polls of this Book that failed in a row (the backoff of the next one).
    public var failures: Int

    public init(bookUUID: BookUUID, reason: PollReason?, dueAt: Date, claimedAt: Date? = nil, failures: Int = 0) {
        self.failures = failures
        self.bookUUID = bookUUID
        self.reason = reason
        self.dueAt = dueAt
        self.claimedAt = claimedAt
    }
}

extension SQLiteBookStore {
    /// The uuid of the tracked Book with this pk, if any.
    public func uuid(forPK pk: Int) async throws -> BookUUID? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT uuid FROM books WHERE pk = ? ORDER BY untracked_at IS NOT NULL LIMIT 1", arguments: [pk]).flatMap { BookUUID($0) }
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
                    bookUUID: uuid, reason: (row["poll_reason"] as String?).flatMap(PollReason.init(rawValue:)),
                    dueAt: Date(storageMillis: row["next_poll_at"]), failures: row["poll_failures"])
            }
        }
        let urgent = try fetch("""
            SELECT uuid, poll_reason, next_poll_at, poll_failures FROM books INDEXED BY books_urgent_poll
            WHERE poll_reason IS NOT NULL AND next_poll_at <= ? \(notIn) ORDER BY next_poll_at LIMIT ?
            """, limit)
        guard urgent.count < limit else { return urgent }
        return urgent + (try fetch("""
            SELECT uuid, poll_reason, next_poll_at, poll_failures FROM books INDEXED BY books_due_poll
            WHERE next_poll_at IS NOT NULL AND next_poll_at <= ? AND poll_reason IS NULL \(notIn) ORDER BY next_poll_at LIMIT ?
            """, limit - urgent.count))
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
                arguments: [at.storageMillis, at.storageMillis, reason.rawValue, uuid.rawValue])
        }
    }

    /// When webhooks turn silent or lossy, polls set while they were trusted would otherwise wait
    /// up to the maximum interval (finished Books: far longer): see `BookStore.tightenPolls`.
    @discardableResult
    public func tightenPolls(now: Date, active: TimeInterval, finished: TimeInterval) async throws -> Int {
        try await write { db in
            var moved = 0
            for group in BooksTable.tightenings(now: now, active: active, finished: finished) {
                try db.execute(
                    sql: """
                        UPDATE books SET next_poll_at = ? + (ABS(RANDOM()) % ?)
                        WHERE state IN \(group.states) AND poll_reason IS NULL AND poll_claimed_at IS NULL AND next_poll_at > ?
                        """,
                    arguments: [group.low, group.span, group.limit])
                moved += db.changesCount
            }
            return moved
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
                arguments: [until.storageMillis, keepUrgent, uuid.rawValue])
        }
    }

    /// Marks an inbox row processed with an outcome (`applied`, `ignored`, `unresolved`...).
    @discardableResult
    public func markProcessed(_ id: Int64, at: Date, outcome: String) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE webhook_inbox SET processed_at = ?, outcome = ?, claimed_by = NULL WHERE id = ? AND processed_at IS NULL",
                arguments: [at.storageMillis, outcome, id])
            return db.changesCount == 1
        }
    }

    public func claimInbox(owner: String, now: Date, limit: Int, lease: TimeInterval) async throws -> [StoredDelivery] {
        try await write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    UPDATE webhook_inbox SET claimed_by = ?, claim_expires_at = ?
                    WHERE id IN (SELECT id FROM webhook_inbox WHERE processed_at IS NULL
                                 AND (claimed_by IS NULL OR claim_expires_at < ?) AND (not_before IS NULL OR not_before <= ?)
                                 ORDER BY id LIMIT ?)
                    RETURNING *
                    """,
                arguments: [owner, now.addingTimeInterval(lease).storageMillis, now.storageMillis, now.storageMillis, limit])
            return rows.map(Self.storedDelivery).sorted { $0.id < $1.id }
        }
    }

    public func releaseInbox(_ ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await write { db in
            try db.execute(
                sql: "UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL WHERE id IN (\(databaseQuestionMarks(count: ids.count))) AND processed_at IS NULL",
                arguments: StatementArguments(ids))
        }
    }

    public func deferInbox(_ id: Int64, owner: String, until: Date) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL, attempts = attempts + 1, not_before = ?
                    WHERE id = ? AND processed_at IS NULL AND claimed_by = ?
                    """,
                arguments: [until.storageMillis, id, owner])
        }
    }

    /// Deliveries not yet processed.
    public func pendingInboxCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhook_inbox WHERE processed_at IS NULL") ?? 0 }
    }

    /// Claims the most overdue pending job due by `now`: state `running`, lease to `owner` until
    /// `now + lease`, attempts + 1, all in one transaction before any call is made.
    public func claimAnalyticsJob(owner: String, now: Date, lease: TimeInterval) async throws -> ClaimedJob? {
        try await write { db in
            guard let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT id, book_uuid, generation, attempts, created_at, claims, view_confirmed FROM analytics_jobs j
                    WHERE state = 'pending' AND due_at <= ?
                    AND NOT EXISTS (SELECT 1 FROM books b WHERE b.uuid = j.book_uuid AND b.untracked_at IS NOT NULL)
                    ORDER BY due_at LIMIT 1
                    """,
                arguments: [now.storageMillis])
            else { return nil }
            let expires = now.addingTimeInterval(lease)
            try db.execute(
                sql: """
                    UPDATE analytics_jobs SET state = 'running', lease_owner = ?, lease_expires_at = ?, claims = claims + 1, view_confirmed = 0,
                        ready_announced = 0
                    WHERE id = ?
                    """,
                arguments: [owner, expires.storageMillis, row["id"] as Int64])
            guard let uuid = BookUUID(row["book_uuid"] as String) else {
                throw StoreError(.corrupt, subject: "analytics_jobs.book_uuid", detail: "\(row["book_uuid"] as String)")
            }
            return ClaimedJob(bookUUID: uuid, generation: row["generation"], attempts: row["attempts"], leaseExpiresAt: expires,
                              openedAt: Date(storageMillis: row["created_at"]),
                              claim: JobClaim(owner: owner, token: (row["claims"] as Int64) + 1), viewConfirmed: row["view_confirmed"])
        }
    }

    /// One node owns the whole database: every claim a previous run left is its own. Running jobs
    /// are re-armed, claimed polls come due now, claimed inbox rows are released.
    @discardableResult
    public func recoverLeases(owner: String, now: Date) async throws -> Int {
        let jobs = try await rearmLeases(expiringBefore: .distantFuture, dueAt: now)
        try await write { db in
            try db.execute(
                sql: "UPDATE books SET next_poll_at = MIN(next_poll_at, ?), poll_claimed_at = NULL WHERE poll_claimed_at IS NOT NULL",
                arguments: [now.storageMillis])
            try db.execute(sql: "UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL WHERE claimed_by IS NOT NULL AND processed_at IS NULL")
        }
        return jobs
    }

    /// The earliest due time of a pending job, if any.
    public func nextJobDueAt() async throws -> Date? {
        try await read { db in
            // As `claimAnalyticsJob` sees them: an untracked Book's job waits for `track`.
            try Int64.fetchOne(db, sql: """
                SELECT MIN(due_at) FROM analytics_jobs j WHERE state = 'pending'
                AND NOT EXISTS (SELECT 1 FROM books b WHERE b.uuid = j.book_uuid AND b.untracked_at IS NOT NULL)
                """).map(Date.init(storageMillis:))
        }
    }

    /// Returns jobs whose lease expired (their worker died) to `pending`, due now; answers how many.
    @discardableResult
    public func rearmExpiredLeases(now: Date) async throws -> Int {
        try await rearmLeases(expiringBefore: now, dueAt: now)
    }

    /// Returns running jobs whose lease expires before `expiringBefore` to `pending`, due at `dueAt`
    /// (on startup every lease of a previous process: `expiringBefore: .distantFuture`).
    @discardableResult
    public func rearmLeases(expiringBefore: Date, dueAt now: Date) async throws -> Int {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE analytics_jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, due_at = ?
                    WHERE state = 'running' AND lease_expires_at < ?
                    """,
                arguments: [now.storageMillis, expiringBefore.storageMillis])
            return db.changesCount
        }
    }

    /// Endpoints already stored for a generation (a retry fetches only the others).
    public func storedEndpoints(_ uuid: BookUUID, generation: Int) async throws -> Set<String> {
        try await read { db in
            Set(try String.fetchAll(db, sql: "SELECT endpoint FROM analytics_results WHERE book_uuid = ? AND generation = ?",
                                    arguments: [uuid.rawValue, generation]))
        }
    }

    /// Counts for the demo summary and metrics: jobs by state, results stored.
    public func analyticsCounts() async throws -> (jobs: [String: Int], results: Int) {
        try await read { db in
            var jobs: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM analytics_jobs GROUP BY state") {
                jobs[row["state"]] = row["n"]
            }
            return (jobs, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM analytics_results") ?? 0)
        }
    }
}

/// A retrieval to hand on (`--on-complete`).
public struct PendingNotification: Sendable, Equatable {
    public var bookUUID: BookUUID
    public var generation: Int
    public var attempts: Int

    package init(bookUUID: BookUUID, generation: Int, attempts: Int) {
        self.bookUUID = bookUUID
        self.generation = generation
        self.attempts = attempts
    }

    /// `book_uuid:generation`: the receiver dedupes on it (delivery is at least once).
    public var idempotencyKey: String { "\(bookUUID):\(generation)" }
}

extension SQLiteBookStore {
    public func pendingNotifications(limit: Int) async throws -> [PendingNotification] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT book_uuid, generation, attempts FROM notifications WHERE delivered_at IS NULL ORDER BY created_at LIMIT ?",
                arguments: [limit]
            ).compactMap { row in
                BookUUID(row["book_uuid"] as String).map { PendingNotification(bookUUID: $0, generation: row["generation"], attempts: row["attempts"]) }
            }
        }
    }

    public func claimNotification(owner: String, now: Date, lease: TimeInterval) async throws -> PendingNotification? {
        try await write { db in
            try Row.fetchOne(
                db,
                sql: """
                    UPDATE notifications SET claimed_by = ?, claim_expires_at = ?
                    WHERE rowid = (SELECT rowid FROM notifications WHERE delivered_at IS NULL
                                   AND (claimed_by IS NULL OR claim_expires_at < ?) AND (not_before IS NULL OR not_before <= ?)
                                   ORDER BY created_at LIMIT 1)
                    RETURNING book_uuid, generation, attempts
                    """,
                arguments: [owner, now.addingTimeInterval(lease).storageMillis, now.storageMillis, now.storageMillis]
            ).flatMap { row in
                BookUUID(row["book_uuid"] as String).map { PendingNotification(bookUUID: $0, generation: row["generation"], attempts: row["attempts"]) }
            }
        }
    }

    /// Records the outcome of one hand-on attempt (nil error: delivered).
    public func recordNotification(_ notification: PendingNotification, at: Date, error: String?, retryAt: Date?) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE notifications SET attempts = attempts + 1, last_error = ?, claimed_by = NULL, claim_expires_at = NULL,
                        delivered_at = CASE WHEN ? IS NULL THEN ? ELSE NULL END, not_before = ?
                    WHERE book_uuid = ? AND generation = ?
                    """,
                arguments: [error, error, at.storageMillis, retryAt?.storageMillis, notification.bookUUID.rawValue, notification.generation])
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
                arguments: [t, limit])
            counts.deliveries = db.changesCount
            try db.execute(
                sql: """
                    DELETE FROM notifications WHERE rowid IN (
                        SELECT rowid FROM notifications WHERE delivered_at IS NOT NULL AND delivered_at < ? LIMIT ?)
                    """,
                arguments: [t, limit])
            counts.notifications = db.changesCount
            try db.execute(
                sql: """
                    DELETE FROM analytics_jobs WHERE id IN (
                        SELECT j.id FROM analytics_jobs j WHERE j.state IN ('complete', 'superseded') AND j.completed_at < ?
                        AND j.generation < (SELECT MAX(k.generation) FROM analytics_jobs k WHERE k.book_uuid = j.book_uuid) LIMIT ?)
                    """,
                arguments: [t, limit])
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
                arguments: [key, next, now.storageMillis])
            return next
        }
    }
}
