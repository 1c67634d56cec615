import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import PostgresNIO

extension PostgresBookStore {
    // MARK: reading

    public func book(_ uuid: BookUUID) async throws -> BookRecord? {
        try await records("SELECT * FROM books WHERE uuid = \(uuid.rawValue) AND untracked_at IS NULL").first
    }

    public func books(state: BookPhase?, limit: Int?) async throws -> [BookRecord] {
        let limit = max(0, limit ?? Int(Int32.max))
        if let state {
            return try await records(
                "SELECT * FROM books WHERE state = \(state.rawValue) AND untracked_at IS NULL ORDER BY uuid LIMIT \(limit)")
        }
        return try await records("SELECT * FROM books WHERE untracked_at IS NULL ORDER BY uuid LIMIT \(limit)")
    }

    /// Book rows into records: their documents and newest jobs in two more queries.
    private func records(_ query: PostgresQuery) async throws -> [BookRecord] {
        try await connection { c in
            let books = try await Self.rows(c, query, self.logger).map(Self.storedBook)
            guard !books.isEmpty else { return [] }
            let keys = books.map(\.uuid)
            let documents = try await Self.documents(c, of: keys, self.logger)
            var jobs: [String: StoredJob] = [:]
            for row in try await Self.rows(c, """
                SELECT DISTINCT ON (j.book_uuid) j.*, (SELECT MAX(r.retrieved_at) FROM analytics_results r
                    WHERE r.book_uuid = j.book_uuid AND r.generation = j.generation) AS retrieved_at
                FROM analytics_jobs j WHERE j.book_uuid = ANY(\(keys)) ORDER BY j.book_uuid, j.generation DESC
                """, self.logger)
            {
                jobs[try row.value("book_uuid")] = StoredJob(
                    generation: try row.value("generation"), state: try row.value("state"), attempts: try row.value("attempts"),
                    dueAt: try row.value("due_at"), lastError: try row.value("last_error"), completedAt: try row.value("completed_at"),
                    retrievedAt: try row.value("retrieved_at"))
            }
            return try books.map { try $0.record(documents: documents[$0.uuid] ?? [], job: jobs[$0.uuid]) }
        }
    }

    public func totals() async throws -> [BookPhase: Int] {
        try await connection { c in try await Self.totals(c, self.logger) }
    }

    static func totals(_ c: PostgresConnection, _ logger: Logger) async throws -> [BookPhase: Int] {
        try bookTotals(try await rows(c, "SELECT state, COUNT(*) AS n FROM books WHERE untracked_at IS NULL GROUP BY state", logger).map {
            (try $0.value("state"), try $0.value("n"))
        })
    }

    public func gauges(overdueBefore: Date) async throws -> StoreGauges {
        try await connection { c in
            var gauges = StoreGauges()
            gauges.books = try await Self.totals(c, self.logger)
            for row in try await Self.rows(c, "SELECT d.status, COUNT(*) AS n FROM documents d JOIN books b ON b.uuid = d.book_uuid WHERE b.untracked_at IS NULL GROUP BY d.status", self.logger) {
                gauges.addDocuments(status: try row.value("status"), count: try row.value("n"))
            }
            gauges.inboxPending = try await Self.count(c, "SELECT COUNT(*) AS n FROM webhook_inbox WHERE processed_at IS NULL", self.logger)
            gauges.pollsOverdue = try await Self.count(
                c, "SELECT COUNT(*) AS n FROM books WHERE next_poll_at IS NOT NULL AND next_poll_at < \(overdueBefore.storageMillis)",
                self.logger)
            return gauges
        }
    }

    static func count(_ c: PostgresConnection, _ query: PostgresQuery, _ logger: Logger) async throws -> Int {
        try await rows(c, query, logger).first?.value("n", as: Int.self) ?? 0
    }

    /// The column `v` of a one-row query (nil when the row or the value is missing).
    func scalar(_ query: PostgresQuery, as type: Int64.Type) async throws -> Int64? {
        try await connection { c in try await Self.rows(c, query, self.logger).first?.value("v", as: Int64?.self) }
    }

    func scalar(_ query: PostgresQuery, as type: String.Type) async throws -> String? {
        try await connection { c in try await Self.rows(c, query, self.logger).first?.value("v", as: String?.self) }
    }

    // MARK: inbox and health

    public func appendToInbox(_ delivery: InboxDelivery) async throws -> InboxAppendOutcome {
        try await appendToInbox(batch: [delivery])[0]
    }

    public func appendToInbox(batch: [InboxDelivery]) async throws -> [InboxAppendOutcome] {
        guard !batch.isEmpty else { return [] }
        return try await transaction { c in
            var outcomes: [InboxAppendOutcome] = []
            for d in batch {
                let inserted = try await Self.rows(c, """
                    INSERT INTO webhook_inbox (request_id, received_at, book_uuid, book_pk, event, body, remote_address, authenticated)
                    VALUES (\(d.requestID), \(d.receivedAt.storageMillis), \(d.bookUUID?.rawValue), \(d.bookPK), \(d.event),
                        \(Data(d.body)), \(d.remoteAddress), \(d.authenticated))
                    ON CONFLICT (request_id) DO NOTHING RETURNING id
                    """, self.logger)
                outcomes.append(try inserted.first.map { .stored(id: try $0.value("id")) } ?? .duplicate)
            }
            return outcomes
        }
    }

    public func probeWritable(at now: Date) async throws {
        _ = try await connection { c in
            try await c.query("""
                INSERT INTO service_health (id, checked_at) VALUES (1, \(now.storageMillis))
                ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at
                """, logger: self.logger)
        }
    }

    public func claimInbox(owner: String, now: Date, limit: Int, lease: TimeInterval) async throws -> [StoredDelivery] {
        try await connection { c in
            try await Self.rows(c, """
                UPDATE webhook_inbox SET claimed_by = \(owner), claim_expires_at = \(now.addingTimeInterval(lease).storageMillis)
                WHERE id IN (SELECT id FROM webhook_inbox WHERE processed_at IS NULL
                             AND (claimed_by IS NULL OR claim_expires_at < \(now.storageMillis))
                             AND (not_before IS NULL OR not_before <= \(now.storageMillis))
                             ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING *
                """, self.logger).map { row in
                let body: Data = try row.value("body")
                return StoredDelivery(id: try row.value("id"), delivery: InboxDelivery(
                    requestID: try row.value("request_id"), receivedAt: Date(storageMillis: try row.value("received_at")),
                    bookUUID: (try row.value("book_uuid", as: String?.self)).flatMap { BookUUID($0) }, bookPK: try row.value("book_pk"),
                    event: try row.value("event"), body: Array(body), remoteAddress: try row.value("remote_address"),
                    authenticated: try row.value("authenticated")), attempts: Int(try row.value("attempts", as: Int64.self)))
            }.sorted { $0.id < $1.id }
        }
    }

    @discardableResult
    public func markProcessed(_ id: Int64, at: Date, outcome: String) async throws -> Bool {
        try await connection { c in
            !(try await Self.rows(c, """
                UPDATE webhook_inbox SET processed_at = \(at.storageMillis), outcome = \(outcome), claimed_by = NULL
                WHERE id = \(id) AND processed_at IS NULL RETURNING id
                """, self.logger)).isEmpty
        }
    }

    public func deferInbox(_ id: Int64, owner: String, until: Date) async throws {
        _ = try await connection { c in
            try await c.query("""
                UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL, attempts = attempts + 1, not_before = \(until.storageMillis)
                WHERE id = \(id) AND processed_at IS NULL AND claimed_by = \(owner)
                """, logger: self.logger)
        }
    }

    public func releaseInbox(_ ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        _ = try await connection { c in
            try await c.query("""
                UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL WHERE id = ANY(\(ids)) AND processed_at IS NULL
                """, logger: self.logger)
        }
    }

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
                    return DuePoll(bookUUID: uuid, reason: (try row.value("poll_reason", as: String?.self)).flatMap(PollReason.init(rawValue:)),
                                   dueAt: Date(storageMillis: try row.value("next_poll_at")), claimedAt: Date(storageMillis: t),
                                   failures: try row.value("poll_failures"))
                }
            }
            var claimed = try await due("""
                SELECT uuid, poll_reason, next_poll_at, poll_failures FROM books
                WHERE poll_reason IS NOT NULL AND next_poll_at <= \(t) AND NOT (uuid = ANY(\(skip)))
                ORDER BY next_poll_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """)
            if claimed.count < limit {
                claimed += try await due("""
                    SELECT uuid, poll_reason, next_poll_at, poll_failures FROM books
                    WHERE next_poll_at IS NOT NULL AND next_poll_at <= \(t) AND poll_reason IS NULL AND NOT (uuid = ANY(\(skip)))
                    ORDER BY next_poll_at LIMIT \(limit - claimed.count) FOR UPDATE SKIP LOCKED
                    """)
            }
            guard !claimed.isEmpty else { return [] }
            try await c.query("""
                UPDATE books SET next_poll_at = \(now.addingTimeInterval(lease).storageMillis), poll_claimed_at = \(t)
                WHERE uuid = ANY(\(claimed.map(\.bookUUID.rawValue)))
                """, logger: self.logger)
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
            try await c.query("""
                UPDATE books SET next_poll_at = LEAST(COALESCE(next_poll_at, \(t)), \(t)), poll_reason = \(reason.rawValue),
                    poll_claimed_at = NULL
                WHERE uuid = \(uuid.rawValue) AND state <> 'deleted' AND untracked_at IS NULL
                """, logger: self.logger)
        }
    }

    public func deferPoll(_ uuid: BookUUID, until: Date, keepUrgent: Bool) async throws {
        _ = try await connection { c in
            try await c.query("""
                UPDATE books SET next_poll_at = \(until.storageMillis), poll_claimed_at = NULL, poll_failures = poll_failures + 1,
                    poll_reason = CASE WHEN \(keepUrgent) THEN poll_reason ELSE NULL END
                WHERE uuid = \(uuid.rawValue) AND next_poll_at IS NOT NULL
                """, logger: self.logger)
        }
    }

    @discardableResult
    public func tightenPolls(now: Date, active: TimeInterval, finished: TimeInterval) async throws -> Int {
        try await connection { c in
            var moved = 0
            for group in BooksTable.tightenings(now: now, active: active, finished: finished) {
                moved += try await Self.rows(c, """
                    UPDATE books SET next_poll_at = \(group.low) + FLOOR(RANDOM() * \(group.span))::BIGINT
                    WHERE state IN \(unescaped: group.states) AND poll_reason IS NULL AND poll_claimed_at IS NULL
                        AND next_poll_at > \(group.limit)
                    RETURNING uuid
                    """, self.logger).count
            }
            return moved
        }
    }

    // MARK: analytics jobs

    public func claimAnalyticsJob(owner: String, now: Date, lease: TimeInterval) async throws -> ClaimedJob? {
        let expires = now.addingTimeInterval(lease)
        return try await connection { c in
            guard let row = try await Self.rows(c, """
                UPDATE analytics_jobs j SET state = 'running', lease_owner = \(owner), lease_expires_at = \(expires.storageMillis),
                    claims = j.claims + 1, view_confirmed = FALSE, ready_announced = FALSE
                FROM (SELECT id, view_confirmed AS confirmed FROM analytics_jobs a WHERE state = 'pending' AND due_at <= \(now.storageMillis)
                      AND NOT EXISTS (SELECT 1 FROM books b WHERE b.uuid = a.book_uuid AND b.untracked_at IS NOT NULL)
                      ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED) s
                WHERE j.id = s.id
                RETURNING j.book_uuid, j.generation, j.attempts, j.created_at, j.claims, s.confirmed AS view_confirmed
                """, self.logger).first
            else { return nil }
            let key: String = try row.value("book_uuid")
            guard let uuid = BookUUID(key) else { throw StoreError(.corrupt, subject: "analytics_jobs.book_uuid", detail: key) }
            return ClaimedJob(bookUUID: uuid, generation: try row.value("generation"), attempts: try row.value("attempts"),
                              leaseExpiresAt: Date(storageMillis: expires.storageMillis),
                              openedAt: Date(storageMillis: try row.value("created_at")),
                              claim: JobClaim(owner: owner, token: try row.value("claims")), viewConfirmed: try row.value("view_confirmed"))
        }
    }

    public func nextJobDueAt() async throws -> Date? {
        try await scalar("SELECT MIN(due_at) AS v FROM analytics_jobs WHERE state = 'pending'", as: Int64.self).map(Date.init(storageMillis:))
    }

    @discardableResult
    public func rearmExpiredLeases(now: Date) async throws -> Int {
        let t = now.storageMillis
        return try await connection { c in
            try await Self.rows(c, """
                UPDATE analytics_jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, due_at = \(t)
                WHERE state = 'running' AND lease_expires_at < \(t) RETURNING id
                """, self.logger).count
        }
    }

    /// Only this process's claims and expired ones: another replica's live lease is its own.
    @discardableResult
    public func recoverLeases(owner: String, now: Date) async throws -> Int {
        let t = now.storageMillis
        return try await connection { c in
            try await c.query("""
                UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL WHERE claimed_by = \(owner) AND processed_at IS NULL
                """, logger: self.logger)
            return try await Self.rows(c, """
                UPDATE analytics_jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, due_at = \(t)
                WHERE state = 'running' AND (lease_owner = \(owner) OR lease_expires_at < \(t)) RETURNING id
                """, self.logger).count
        }
    }

    public func storedEndpoints(_ uuid: BookUUID, generation: Int) async throws -> Set<String> {
        try await connection { c in
            Set(try await Self.rows(
                c, "SELECT endpoint FROM analytics_results WHERE book_uuid = \(uuid.rawValue) AND generation = \(generation)", self.logger
            ).map { try $0.value("endpoint", as: String.self) })
        }
    }

    public func storeAnalyticsResult(_ result: AnalyticsResult, claim: JobClaim) async throws {
        try await transaction { c in
            try await Self.holdFence(c, result.bookUUID.rawValue, result.generation, claim, self.logger)
            try await c.query("""
                INSERT INTO analytics_results (book_uuid, generation, endpoint, body, retrieved_at)
                VALUES (\(result.bookUUID.rawValue), \(result.generation), \(result.endpoint), \(Data(result.body)),
                    \(result.retrievedAt.storageMillis))
                ON CONFLICT (book_uuid, generation, endpoint) DO NOTHING
                """, logger: self.logger)
        }
    }

    public func renewJobLease(_ claim: JobClaim, bookUUID: BookUUID, generation: Int, until: Date) async throws -> Bool {
        try await connection { c in
            !(try await Self.rows(c, """
                UPDATE analytics_jobs SET lease_expires_at = \(until.storageMillis)
                WHERE book_uuid = \(bookUUID.rawValue) AND generation = \(generation) AND state = 'running'
                    AND lease_owner = \(claim.owner) AND claims = \(claim.token)
                RETURNING id
                """, self.logger)).isEmpty
        }
    }

    public func isUntracked(_ uuid: BookUUID) async throws -> Bool {
        try await scalar("SELECT 1::BIGINT AS v FROM books WHERE uuid = \(uuid.rawValue) AND untracked_at IS NOT NULL", as: Int64.self) != nil
    }

    /// The fence of a worker's write: locks the job row while it is still running under `claim`,
    /// else throws `.lostClaim` (the transaction rolls back).
    static func holdFence(_ c: PostgresConnection, _ key: String, _ generation: Int, _ claim: JobClaim, _ logger: Logger) async throws {
        let held = try await rows(c, """
            SELECT id FROM analytics_jobs WHERE book_uuid = \(key) AND generation = \(generation) AND state = 'running'
                AND lease_owner = \(claim.owner) AND claims = \(claim.token)
            FOR UPDATE
            """, logger)
        guard !held.isEmpty else {
            throw StoreError(.lostClaim, subject: "analytics job \(key) generation \(generation)", detail: "claim \(claim.token) of \(claim.owner)")
        }
    }

    public func analyticsResults(for uuid: BookUUID, endpoint: String?) async throws -> [AnalyticsResult] {
        try await connection { c in
            let query: PostgresQuery = endpoint.map {
                "SELECT * FROM analytics_results WHERE book_uuid = \(uuid.rawValue) AND endpoint = \($0) ORDER BY generation DESC, endpoint"
            } ?? "SELECT * FROM analytics_results WHERE book_uuid = \(uuid.rawValue) ORDER BY generation DESC, endpoint"
            return try await Self.rows(c, query, self.logger).map { row in
                let body: Data = try row.value("body")
                return AnalyticsResult(bookUUID: uuid, generation: try row.value("generation"), endpoint: try row.value("endpoint"),
                                       body: Array(body), retrievedAt: Date(storageMillis: try row.value("retrieved_at")))
            }
        }
    }

    public func analyticsCounts() async throws -> (jobs: [String: Int], results: Int) {
        try await connection { c in
            var jobs: [String: Int] = [:]
            for row in try await Self.rows(c, "SELECT state, COUNT(*) AS n FROM analytics_jobs GROUP BY state", self.logger) {
                jobs[try row.value("state")] = try row.value("n")
            }
            return (jobs, try await Self.count(c, "SELECT COUNT(*) AS n FROM analytics_results", self.logger))
        }
    }

    // MARK: notifications

    public func pendingNotifications(limit: Int) async throws -> [PendingNotification] {
        try await connection { c in
            try await Self.rows(c, """
                SELECT book_uuid, generation, attempts FROM notifications WHERE delivered_at IS NULL ORDER BY created_at LIMIT \(limit)
                """, self.logger).compactMap { row in
                BookUUID(try row.value("book_uuid", as: String.self)).map {
                    PendingNotification(bookUUID: $0, generation: (try? row.value("generation")) ?? 0, attempts: (try? row.value("attempts")) ?? 0)
                }
            }
        }
    }

    public func claimNotification(owner: String, now: Date, lease: TimeInterval) async throws -> PendingNotification? {
        try await connection { c in
            guard let row = try await Self.rows(c, """
                UPDATE notifications SET claimed_by = \(owner), claim_expires_at = \(now.addingTimeInterval(lease).storageMillis)
                WHERE (book_uuid, generation) = (
                    SELECT book_uuid, generation FROM notifications WHERE delivered_at IS NULL
                        AND (claimed_by IS NULL OR claim_expires_at < \(now.storageMillis))
                        AND (not_before IS NULL OR not_before <= \(now.storageMillis))
                    ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING book_uuid, generation, attempts
                """, self.logger).first,
                let uuid = BookUUID(try row.value("book_uuid", as: String.self))
            else { return nil }
            return PendingNotification(bookUUID: uuid, generation: try row.value("generation"), attempts: try row.value("attempts"))
        }
    }

    public func recordNotification(_ notification: PendingNotification, at: Date, error: String?, retryAt: Date?) async throws {
        let delivered: Int64? = error == nil ? at.storageMillis : nil
        _ = try await connection { c in
            try await c.query("""
                UPDATE notifications SET attempts = attempts + 1, last_error = \(error), delivered_at = \(delivered),
                    claimed_by = NULL, claim_expires_at = NULL, not_before = \(retryAt?.storageMillis)
                WHERE book_uuid = \(notification.bookUUID.rawValue) AND generation = \(notification.generation)
                """, logger: self.logger)
        }
    }
}

extension PostgresBookStore {
    public func prune(before: Date, limit: Int) async throws -> PruneCounts {
        let t = before.storageMillis
        return try await transaction { c in
            var counts = PruneCounts()
            counts.deliveries = try await Self.rows(c, """
                DELETE FROM webhook_inbox WHERE id IN (
                    SELECT id FROM webhook_inbox WHERE processed_at IS NOT NULL AND processed_at < \(t) ORDER BY processed_at LIMIT \(limit))
                RETURNING id
                """, self.logger).count
            counts.notifications = try await Self.rows(c, """
                DELETE FROM notifications WHERE (book_uuid, generation) IN (
                    SELECT book_uuid, generation FROM notifications WHERE delivered_at IS NOT NULL AND delivered_at < \(t) LIMIT \(limit))
                RETURNING generation
                """, self.logger).count
            counts.jobs = try await Self.rows(c, """
                DELETE FROM analytics_jobs WHERE id IN (
                    SELECT j.id FROM analytics_jobs j WHERE j.state IN ('complete', 'superseded') AND j.completed_at < \(t)
                    AND j.generation < (SELECT MAX(k.generation) FROM analytics_jobs k WHERE k.book_uuid = j.book_uuid) LIMIT \(limit))
                RETURNING id
                """, self.logger).count
            return counts
        }
    }
}

extension PostgresBookStore {
    public func sharedState(_ key: String) async throws -> String? {
        try await scalar("SELECT value AS v FROM deployment_state WHERE key = \(key)", as: String.self)
    }

    @discardableResult
    public func updateSharedState(_ key: String, at now: Date, _ transform: @escaping @Sendable (String?) -> String) async throws -> String {
        try await transaction { c in
            // The row is created first so that concurrent replicas serialise on its lock.
            try await c.query("""
                INSERT INTO deployment_state (key, value, updated_at) VALUES (\(key), '', \(now.storageMillis))
                ON CONFLICT (key) DO NOTHING
                """, logger: self.logger)
            let current = try await Self.rows(c, "SELECT value FROM deployment_state WHERE key = \(key) FOR UPDATE", self.logger)
                .first?.value("value", as: String.self)
            let next = transform(current.flatMap { $0.isEmpty ? nil : $0 })
            try await c.query(
                "UPDATE deployment_state SET value = \(next), updated_at = \(now.storageMillis) WHERE key = \(key)", logger: self.logger)
            return next
        }
    }
}
