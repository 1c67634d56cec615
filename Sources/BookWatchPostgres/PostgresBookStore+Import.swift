import BookWatchStore
import Foundation
import Logging
import PostgresNIO

extension PostgresBookStore {
    /// Copies the batches of a source into this database (`bookwatch migrate`), all in one
    /// transaction: a failure leaves the database as it was. `source` makes a fresh reader for
    /// each attempt (a transaction retried after a serialization failure starts over). Refuses a
    /// database with a row in any copied table, a column this schema does not have (nothing is
    /// dropped silently), and a copy whose counts differ from `expected` (the source's). Integers
    /// stored for boolean columns become booleans; ids keep their values and the sequences move
    /// past them. Answers the rows copied per table.
    package func importTables(
        expected: [String: Int],
        timeout: Int = 3600,
        _ source: @escaping @Sendable () -> (@Sendable () async throws -> TableBatch?)
    ) async throws -> [String: Int] {
        let logger = self.logger
        return try await transaction(timeout: timeout) { c in
            let next = source()
            for table in CopiedTables.all {
                let rows = try await Self.run(SQLStep("SELECT COUNT(*) AS n FROM \(unescaped: table)", reads: true), on: c, logger)
                let count = try rows.first?.int("n") ?? 0
                guard count == 0 else {
                    throw StoreError(.refused, subject: table, detail: "the destination already holds \(count) rows: migrate into an empty database")
                }
            }
            var types: [String: [String: String]] = [:]
            let columns = try await Self.run(
                SQLStep(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema()",
                    reads: true
                ),
                on: c,
                logger
            )
            for row in columns { types[try row.string("table_name"), default: [:]][try row.string("column_name")] = try row.string("data_type") }
            var counts: [String: Int] = [:]
            while let batch = try await next() {
                guard let known = types[batch.table] else {
                    throw StoreError(.refused, subject: batch.table, detail: "no such table in the destination's schema")
                }
                for column in batch.columns where known[column] == nil {
                    throw StoreError(.refused, subject: "\(batch.table).\(column)", detail: "no such column in the destination's schema")
                }
                let booleans = batch.columns.map { known[$0] == "boolean" }
                let perStatement = max(1, min(SQLQuery.rowsPerStatement, 60_000 / max(batch.columns.count, 1)))
                let names = batch.columns.map { "\"\($0)\"" }.joined(separator: ", ")
                var start = 0
                while start < batch.rows.count {
                    let chunk = batch.rows[start..<min(start + perStatement, batch.rows.count)]
                    var insert: SQLQuery = "INSERT INTO \(unescaped: batch.table) (\(unescaped: names)) VALUES "
                    for (index, row) in chunk.enumerated() {
                        let values = zip(row, booleans).map { value, boolean -> SQLValue in
                            if boolean, case .integer(let int) = value { return .boolean(int != 0) }
                            return value
                        }
                        insert = insert + (index == 0 ? "" : ", ") + "\(list: values)"
                    }
                    try await Self.run(SQLStep(insert), on: c, logger)
                    start += perStatement
                }
                counts[batch.table, default: 0] += batch.rows.count
            }
            for table in CopiedTables.all where counts[table, default: 0] != expected[table, default: 0] {
                throw StoreError(
                    .refused,
                    subject: table,
                    detail: "\(counts[table, default: 0]) rows copied of \(expected[table, default: 0]) in the source; nothing was copied"
                )
            }
            for table in CopiedTables.sequenced {
                try await Self.run(
                    SQLStep(
                        """
                        SELECT setval(pg_get_serial_sequence('\(unescaped: table)', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM \(unescaped: table)), false)
                        """,
                        reads: true
                    ),
                    on: c,
                    logger
                )
            }
            return counts
        }
    }
}
