import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import PostgresNIO

extension PostgresBookStore: JobHistoryReading {
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
