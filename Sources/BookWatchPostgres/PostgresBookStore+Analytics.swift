import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import PostgresNIO

extension PostgresBookStore {
    // MARK: analytics jobs

    public func claimAnalyticsJob(owner: String, now: Date, lease: TimeInterval) async throws -> ClaimedJob? {
        let expires = now.addingTimeInterval(lease)
        return try await connection { c in
            guard
                let row = try await Self.rows(
                    c,
                    """
                    UPDATE analytics_jobs j SET state = 'running', lease_owner = \(owner), lease_expires_at = \(expires.storageMillis),
                        claims = j.claims + 1, view_confirmed = FALSE, ready_announced = FALSE
                    FROM (SELECT id, view_confirmed AS confirmed FROM analytics_jobs a WHERE state = 'pending' AND due_at <= \(now.storageMillis)
                          AND NOT EXISTS (SELECT 1 FROM books b WHERE b.uuid = a.book_uuid AND b.untracked_at IS NOT NULL)
                          ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED) s
                    WHERE j.id = s.id
                    RETURNING j.book_uuid, j.generation, j.attempts, j.created_at, j.claims, s.confirmed AS view_confirmed
                    """,
                    self.logger
                ).first
            else { return nil }
            let key: String = try row.value("book_uuid")
            guard let uuid = BookUUID(key) else { throw StoreError(.corrupt, subject: "analytics_jobs.book_uuid", detail: key) }
            return ClaimedJob(
                bookUUID: uuid,
                generation: try row.value("generation"),
                attempts: try row.value("attempts"),
                leaseExpiresAt: Date(storageMillis: expires.storageMillis),
                openedAt: Date(storageMillis: try row.value("created_at")),
                claim: JobClaim(owner: owner, token: try row.value("claims")),
                viewConfirmed: try row.value("view_confirmed")
            )
        }
    }

    public func nextJobDueAt() async throws -> Date? {
        // As `claimAnalyticsJob` sees them: an untracked Book's job waits for `track`.
        try await scalar(
            """
            SELECT MIN(due_at) AS v FROM analytics_jobs j WHERE state = 'pending'
            AND NOT EXISTS (SELECT 1 FROM books b WHERE b.uuid = j.book_uuid AND b.untracked_at IS NOT NULL)
            """,
            as: Int64.self
        ).map(Date.init(storageMillis:))
    }

    @discardableResult
    public func rearmExpiredLeases(now: Date) async throws -> Int {
        let t = now.storageMillis
        return try await connection { c in
            try await Self.rows(
                c,
                """
                UPDATE analytics_jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, due_at = \(t)
                WHERE state = 'running' AND lease_expires_at < \(t) RETURNING id
                """,
                self.logger
            ).count
        }
    }

    /// Only this process's claims and expired ones: another replica's live lease is its own.
    @discardableResult
    public func recoverLeases(owner: String, now: Date) async throws -> Int {
        let t = now.storageMillis
        return try await connection { c in
            try await c.query(
                """
                UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL WHERE claimed_by = \(owner) AND processed_at IS NULL
                """,
                logger: self.logger
            )
            return try await Self.rows(
                c,
                """
                UPDATE analytics_jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, due_at = \(t)
                WHERE state = 'running' AND (lease_owner = \(owner) OR lease_expires_at < \(t)) RETURNING id
                """,
                self.logger
            ).count
        }
    }

    public func storedEndpoints(_ uuid: BookUUID, generation: Int) async throws -> Set<String> {
        try await connection { c in
            Set(
                try await Self.rows(
                    c,
                    "SELECT endpoint FROM analytics_results WHERE book_uuid = \(uuid.rawValue) AND generation = \(generation)",
                    self.logger
                ).map { try $0.value("endpoint", as: String.self) }
            )
        }
    }

    public func storeAnalyticsResult(_ result: AnalyticsResult, claim: JobClaim) async throws {
        try await transaction { c in
            try await Self.run(TransitionDriver.holdFence(result.bookUUID.rawValue, result.generation, claim), on: c, self.logger)
            try await Self.run(TransitionDriver.insertResult(result), on: c, self.logger)
        }
    }

    public func renewJobLease(_ claim: JobClaim, bookUUID: BookUUID, generation: Int, until: Date) async throws -> Bool {
        try await connection { c in
            !(try await Self.rows(
                c,
                """
                UPDATE analytics_jobs SET lease_expires_at = \(until.storageMillis)
                WHERE book_uuid = \(bookUUID.rawValue) AND generation = \(generation) AND state = 'running'
                    AND lease_owner = \(claim.owner) AND claims = \(claim.token)
                RETURNING id
                """,
                self.logger
            )).isEmpty
        }
    }

    public func isUntracked(_ uuid: BookUUID) async throws -> Bool {
        try await scalar("SELECT 1::BIGINT AS v FROM books WHERE uuid = \(uuid.rawValue) AND untracked_at IS NOT NULL", as: Int64.self) != nil
    }

    public func inboxContains(requestID: String) async throws -> Bool {
        try await scalar("SELECT 1::BIGINT AS v FROM webhook_inbox WHERE request_id = \(requestID)", as: Int64.self) != nil
    }

    public func analyticsResults(for uuid: BookUUID, endpoint: String?) async throws -> [AnalyticsResult] {
        try await connection { c in
            let query: PostgresQuery =
                endpoint.map {
                    "SELECT * FROM analytics_results WHERE book_uuid = \(uuid.rawValue) AND endpoint = \($0) ORDER BY generation DESC, endpoint"
                } ?? "SELECT * FROM analytics_results WHERE book_uuid = \(uuid.rawValue) ORDER BY generation DESC, endpoint"
            return try await Self.rows(c, query, self.logger).map { row in
                let body: Data = try row.value("body")
                return AnalyticsResult(
                    bookUUID: uuid,
                    generation: try row.value("generation"),
                    endpoint: try row.value("endpoint"),
                    body: Array(body),
                    retrievedAt: Date(storageMillis: try row.value("retrieved_at"))
                )
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
}

extension PostgresBookStore: JobHistoryReading {
    package func jobHistory(_ uuid: BookUUID) async throws -> [JobHistoryRow] {
        try await connection { c in
            try await Self.rows(
                c,
                """
                SELECT generation, state, last_error FROM analytics_jobs WHERE book_uuid = \(uuid.rawValue) ORDER BY generation
                """,
                self.logger
            ).map {
                JobHistoryRow(generation: try $0.value("generation"), state: try $0.value("state"), lastError: try $0.value("last_error"))
            }
        }
    }

    /// Drops the schema of bookwatch's own named by the URL (`?schema=`) with everything in it,
    /// only when its name starts with `prefix` (a guard against dropping a real deployment's):
    /// the chaos search gives each seed a fresh schema and drops it after.
    package func dropSchema(prefix: String) async throws {
        guard let schema, schema.hasPrefix(prefix), !prefix.isEmpty else {
            throw StoreError(.invalidLocation, subject: location, detail: "not a schema starting with \(prefix): not dropped")
        }
        // letters, digits and _ only (checked when the URL was read)
        try await connection { c in
            _ = try await c.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(schema) CASCADE"), logger: self.logger)
        }
    }
}
