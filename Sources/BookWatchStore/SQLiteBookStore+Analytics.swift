import BookWatchCore
import Foundation
import GRDB

extension SQLiteBookStore {
    public func storeAnalyticsResult(_ result: AnalyticsResult) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO analytics_results (book_uuid, generation, endpoint, body, retrieved_at)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [
                    result.bookUUID.rawValue, result.generation, result.endpoint, Data(result.body),
                    result.retrievedAt.storageMillis,
                ])
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
                    bookUUID: uuid, generation: row["generation"], endpoint: row["endpoint"], body: Array(body),
                    retrievedAt: Date(storageMillis: row["retrieved_at"]))
            }
        }
    }
}
