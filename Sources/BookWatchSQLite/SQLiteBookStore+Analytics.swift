import BookWatchCore
import BookWatchStore
import Foundation
import GRDB

extension SQLiteBookStore: JobHistoryReading {
    public func storeAnalyticsResult(_ result: AnalyticsResult, claim: JobClaim) async throws {
        try await write { db in
            try db.run(TransitionDriver.holdFence(result.bookUUID.rawValue, result.generation, claim))
            try db.run(TransitionDriver.insertResult(result))
        }
    }

    public func renewJobLease(_ claim: JobClaim, bookUUID: BookUUID, generation: Int, until: Date) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE analytics_jobs SET lease_expires_at = ? WHERE book_uuid = ? AND generation = ? AND state = 'running'
                    AND lease_owner = ? AND claims = ?
                    """,
                arguments: [until.storageMillis, bookUUID.rawValue, generation, claim.owner, claim.token]
            )
            return db.changesCount == 1
        }
    }

    public func isUntracked(_ uuid: BookUUID) async throws -> Bool {
        try await read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM books WHERE uuid = ? AND untracked_at IS NOT NULL", arguments: [uuid.rawValue]) ?? false
        }
    }

    /// A Book's analytics jobs, oldest generation first (the chaos search's liveness check reads
    /// how each generation ended).
    package func jobHistory(_ uuid: BookUUID) async throws -> [JobHistoryRow] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT generation, state, last_error FROM analytics_jobs WHERE book_uuid = ? ORDER BY generation",
                arguments: [uuid.rawValue]
            )
            .map { JobHistoryRow(generation: $0["generation"], state: $0["state"], lastError: $0["last_error"]) }
        }
    }

    public func inboxContains(requestID: String) async throws -> Bool {
        try await read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM webhook_inbox WHERE request_id = ?", arguments: [requestID]) ?? false
        }
    }

    public func analyticsResults(for uuid: BookUUID, endpoint: String?) async throws -> [AnalyticsResult] {
        try await read { db in
            var sql = "SELECT * FROM analytics_results WHERE book_uuid = ?"
            var arguments: StatementArguments = [uuid.rawValue]
            if let endpoint {
                sql += " AND endpoint = ?"
                arguments += [endpoint]
            }
            sql += " ORDER BY generation DESC, endpoint"
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                let body: Data = row["body"]
                return AnalyticsResult(
                    bookUUID: uuid,
                    generation: row["generation"],
                    endpoint: row["endpoint"],
                    body: Array(body),
                    retrievedAt: Date(storageMillis: row["retrieved_at"])
                )
            }
        }
    }
}
