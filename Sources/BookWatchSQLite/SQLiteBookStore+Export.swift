import BookWatchStore
import Foundation
import GRDB

extension SQLiteBookStore {
    /// A consistent view of the whole database for `bookwatch migrate`: every read sees the same
    /// committed state, whatever commits meanwhile (a WAL snapshot: one read transaction held
    /// open until the export is dropped).
    package func export() throws -> SQLiteExport {
        guard !inline else {
            // The writer holds the file's lock for good: a snapshot's reader would wait it out.
            throw StoreError(.unavailable, subject: path, detail: "an inline (simulation) store cannot be exported")
        }
        do {
            return SQLiteExport(snapshot: try pool.makeSnapshot())
        } catch let error as DatabaseError {
            throw Self.storeError(error, path: path)
        }
    }

    /// The newest write the database records, and the latest claim still held at `now`:
    /// `bookwatch migrate` refuses a node written to in the last minute or holding a claim, which
    /// a running `serve` would (times in storage milliseconds, like every column).
    package func activity(now: Date) async throws -> (newestWrite: Date?, claimHeldUntil: Date?) {
        let t = now.storageMillis
        return try await read { db in
            let newest = try Int64.fetchOne(
                db,
                sql: """
                    SELECT MAX(t) FROM (
                        SELECT MAX(updated_at) AS t FROM books
                        UNION ALL SELECT MAX(received_at) FROM webhook_inbox
                        UNION ALL SELECT MAX(processed_at) FROM webhook_inbox
                        UNION ALL SELECT MAX(retrieved_at) FROM analytics_results
                        UNION ALL SELECT MAX(retrieved_at) FROM analytics_pages
                        UNION ALL SELECT MAX(updated_at) FROM deployment_state
                        UNION ALL SELECT MAX(checked_at) FROM service_health)
                    """
            )
            let held = try Int64.fetchOne(
                db,
                sql: """
                    SELECT MAX(t) FROM (
                        SELECT MAX(lease_expires_at) AS t FROM analytics_jobs WHERE state = 'running' AND lease_expires_at > ?
                        UNION ALL SELECT MAX(claim_expires_at) FROM webhook_inbox WHERE processed_at IS NULL AND claim_expires_at > ?
                        UNION ALL SELECT MAX(claim_expires_at) FROM notifications WHERE delivered_at IS NULL AND claim_expires_at > ?)
                    """,
                arguments: [t, t, t]
            )
            return (newest.map(Date.init(storageMillis:)), held.map(Date.init(storageMillis:)))
        }
    }
}

/// Reads of one snapshot of a SQLite database, for `bookwatch migrate`.
package final class SQLiteExport: Sendable {
    private let snapshot: DatabaseSnapshot

    init(snapshot: DatabaseSnapshot) { self.snapshot = snapshot }

    /// The database's tables, bar SQLite's and GRDB's own.
    package func tables() async throws -> [String] {
        try await snapshot.read { db in
            try String.fetchAll(
                db,
                sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'grdb_migrations' ORDER BY name"
            )
        }
    }

    /// The table's columns, in their order (`PRAGMA table_info`).
    package func columns(of table: String) async throws -> [String] {
        try await snapshot.read { db in try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?)", arguments: [table]) }
    }

    /// The table's rows.
    package func count(of table: String) async throws -> Int {
        try await snapshot.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \"\(table)\"") ?? 0 }
    }

    /// Up to `limit` rows of `table` after `after` (the key the previous batch ended on; nil:
    /// from the start), in key order: the rowid, or the primary key of a table without one.
    /// Answers the rows (values in the order of `columns`) and the key to continue after.
    package func rows(of table: String, columns: [String], after: [SQLValue]?, limit: Int) async throws -> (rows: [[SQLValue]], last: [SQLValue]?) {
        let list = columns.map { "\"\($0)\"" }.joined(separator: ", ")
        return try await snapshot.read { db in
            let withoutRowid =
                try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", arguments: [table])?
                .uppercased().contains("WITHOUT ROWID") ?? false
            let keys =
                withoutRowid
                ? try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", arguments: [table]).map {
                    "\"\($0)\""
                }
                : ["rowid"]
            let key = "(" + keys.joined(separator: ", ") + ")"
            let selected = keys.enumerated().map { "\($1) AS \"__key\($0)\"" }.joined(separator: ", ")
            let condition = after == nil ? "" : " WHERE \(key) > (" + keys.map { _ in "?" }.joined(separator: ", ") + ")"
            let order = keys.joined(separator: ", ")
            let statement = try db.makeStatement(sql: "SELECT \(selected), \(list) FROM \"\(table)\"\(condition) ORDER BY \(order) LIMIT ?")
            var arguments = StatementArguments(values: (after ?? []).map(\.databaseValue))
            arguments += [limit]
            var rows: [[SQLValue]] = []
            var last: [SQLValue]?
            let cursor = try Row.fetchCursor(statement, arguments: arguments)
            while let row = try cursor.next() {
                let names = Array(repeating: "key", count: keys.count) + columns
                let values = try zip(Array(row.databaseValues), names).map { value, column in try value.sqlValue(column) }
                last = Array(values.prefix(keys.count))
                rows.append(Array(values.dropFirst(keys.count)))
            }
            return (rows, last)
        }
    }
}
