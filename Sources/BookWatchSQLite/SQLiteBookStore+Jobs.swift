import BookWatchCore
import BookWatchStore
import Foundation
import GRDB

extension SQLiteBookStore {
    /// Claims the most overdue pending job due by `now`: state `running`, lease to `owner` until
    /// `now + lease`, attempts + 1, all in one transaction before any call is made.
    public func claimAnalyticsJob(owner: String, now: Date, lease: TimeInterval) async throws -> ClaimedJob? {
        try await write { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT id, book_uuid, generation, attempts, created_at, claims, view_confirmed FROM analytics_jobs j
                        WHERE state = 'pending' AND due_at <= ?
                        AND NOT EXISTS (SELECT 1 FROM books b WHERE b.uuid = j.book_uuid AND b.untracked_at IS NOT NULL)
                        ORDER BY due_at LIMIT 1
                        """,
                    arguments: [now.storageMillis]
                )
            else { return nil }
            let expires = now.addingTimeInterval(lease)
            try db.execute(
                sql: """
                    UPDATE analytics_jobs SET state = 'running', lease_owner = ?, lease_expires_at = ?, claims = claims + 1, view_confirmed = 0,
                        ready_announced = 0
                    WHERE id = ?
                    """,
                arguments: [owner, expires.storageMillis, row["id"] as Int64]
            )
            guard let uuid = BookUUID(row["book_uuid"] as String) else {
                throw StoreError(.corrupt, subject: "analytics_jobs.book_uuid", detail: "\(row["book_uuid"] as String)")
            }
            return ClaimedJob(
                bookUUID: uuid,
                generation: row["generation"],
                attempts: row["attempts"],
                leaseExpiresAt: expires,
                openedAt: Date(storageMillis: row["created_at"]),
                claim: JobClaim(owner: owner, token: (row["claims"] as Int64) + 1),
                viewConfirmed: row["view_confirmed"]
            )
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
                arguments: [now.storageMillis]
            )
            try db.execute(
                sql: "UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL WHERE claimed_by IS NOT NULL AND processed_at IS NULL"
            )
        }
        return jobs
    }

    /// The earliest due time of a pending job, if any.
    public func nextJobDueAt() async throws -> Date? {
        try await read { db in
            // As `claimAnalyticsJob` sees them: an untracked Book's job waits for `track`.
            try Int64.fetchOne(
                db,
                sql: """
                    SELECT MIN(due_at) FROM analytics_jobs j WHERE state = 'pending'
                    AND NOT EXISTS (SELECT 1 FROM books b WHERE b.uuid = j.book_uuid AND b.untracked_at IS NOT NULL)
                    """
            ).map(Date.init(storageMillis:))
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
                arguments: [now.storageMillis, expiringBefore.storageMillis]
            )
            return db.changesCount
        }
    }

    /// Endpoints already stored for a generation (a retry fetches only the others).
    public func storedEndpoints(_ uuid: BookUUID, generation: Int) async throws -> Set<String> {
        try await read { db in
            Set(
                try String.fetchAll(
                    db,
                    sql: "SELECT endpoint FROM analytics_results WHERE book_uuid = ? AND generation = ?",
                    arguments: [uuid.rawValue, generation]
                )
            )
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
