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
