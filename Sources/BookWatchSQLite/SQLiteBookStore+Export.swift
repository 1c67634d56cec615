import BookWatchStore
import Foundation
import GRDB

extension SQLiteBookStore {
    /// The table's columns, in their order (`PRAGMA table_info`).
    package func columns(of table: String) async throws -> [String] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?)", arguments: [table]).map { $0["name"] } }
    }

    /// Up to `limit` rows of `table` after the first `offset`, in primary-key order (rowid where
    /// there is one), each row's values in the order of `columns`.
    package func rows(of table: String, columns: [String], offset: Int, limit: Int) async throws -> [[SQLValue]] {
        let list = columns.map { "\"\($0)\"" }.joined(separator: ", ")
        return try await read { db in
            let keys = try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", arguments: [table])
                .map { "\"\($0["name"] as String)\"" }
            let order = keys.isEmpty ? "rowid" : keys.joined(separator: ", ")
            let statement = try db.makeStatement(sql: "SELECT \(list) FROM \"\(table)\" ORDER BY \(order) LIMIT ? OFFSET ?")
            return try Row.fetchAll(statement, arguments: [limit, offset]).map { row in
                try zip(columns, row.databaseValues).map { column, value in try value.sqlValue(column) }
            }
        }
    }

    /// The newest write the database records (a Book updated, a delivery received or applied, a
    /// result stored): `bookwatch migrate` refuses a database written to in the last minute, which
    /// a running `serve` would still be writing.
    package func newestWrite() async throws -> Date? {
        try await read { db in
            let t = try Int64.fetchOne(
                db,
                sql: """
                    SELECT MAX(t) FROM (
                        SELECT MAX(updated_at) AS t FROM books
                        UNION ALL SELECT MAX(received_at) FROM webhook_inbox
                        UNION ALL SELECT MAX(processed_at) FROM webhook_inbox
                        UNION ALL SELECT MAX(retrieved_at) FROM analytics_results)
                    """
            )
            return t.map { Date(timeIntervalSince1970: Double($0) / 1000) }
        }
    }
}
