import BookWatchCore
import BookWatchStore
import Foundation
import GRDB

/// What only the single-node store offers: counts and reads its tests and benchmarks use.
extension SQLiteBookStore: JobHistoryReading {
    /// How many deliveries are stored in all (tests and metrics).
    public func inboxCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhook_inbox") ?? 0 }
    }

    /// Deliveries not yet processed, oldest first.
    public func pendingInbox(limit: Int) async throws -> [StoredDelivery] {
        try await perform(
            StoreOperation(.read, SQLStep("SELECT * FROM webhook_inbox WHERE processed_at IS NULL ORDER BY id LIMIT \(limit)", reads: true)) {
                try $0.map(StoredDelivery.init(row:))
            }
        )
    }

    /// Deliveries not yet processed.
    public func pendingInboxCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhook_inbox WHERE processed_at IS NULL") ?? 0 }
    }
}

extension SQLiteBookStore {
    /// SQLite's plan for `step` (`EXPLAIN QUERY PLAN`, its `detail` lines): tests pin the index a
    /// hot statement reads.
    package func queryPlan(_ step: SQLStep) async throws -> [String] {
        let (sql, binds) = step.query.render(SQLiteDialect())
        return try await read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: StatementArguments(values: binds.map(\.databaseValue))).map {
                $0["detail"]
            }
        }
    }
}
