import BookWatchCore
import BookWatchStore
import Foundation
import PostgresNIO
import Testing

@testable import BookWatchPostgres

/// A PostgreSQL call that times out in the middle of its transaction must leave nothing behind:
/// no connection back in the pool inside an open transaction (whose row locks and later
/// statements would never commit: the replica test once found inbox rows nobody could claim).
@Suite struct PostgresTimeoutTests {
    @Test(.enabled(if: StoreKind.postgresURL != nil, "needs PostgreSQL: scripts/with-postgres.sh swift test"))
    func aTransactionThatTimesOutHoldsNoLockAndLeavesNoConnectionInsideIt() async throws {
        let opened = try await openStore(.postgres, schedule: .init(), random: { 0.5 })
        do {
            try await Self.check(try #require(opened.store as? PostgresBookStore))
        } catch {
            try await opened.close()
            throw error
        }
        try await opened.close()
    }

    static func check(_ store: PostgresBookStore) async throws {
        _ = try await store.updateSharedState("probe", at: F.t0) { _ in "before" }
        // Lock the row, then outlive the call's timeout inside the transaction.
        await #expect(throws: (any Error).self) {
            try await store.transaction(timeout: 1) { connection in
                try await connection.query("UPDATE deployment_state SET value = 'inside' WHERE key = 'probe'", logger: store.logger)
                try await connection.query("SELECT pg_sleep(3)", logger: store.logger)
            }
        }
        // Every pooled connection is usable and outside any transaction: the lock is gone (this
        // update would wait for it until its own timeout) and what is written now is committed
        // (seen by the other connections, many times over so that each pooled one is used).
        for round in 0..<16 {
            let value = try await store.updateSharedState("probe", at: F.t0) { _ in "after-\(round)" }
            #expect(value == "after-\(round)")
            #expect(try await store.sharedState("probe") == "after-\(round)")
        }
        let stuck = try await store.transaction { connection in
            let rows = try await connection.query(
                "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND query LIKE '%pg_sleep(3)%'",
                logger: store.logger
            )
            var count = 0
            for try await (value) in rows.decode(Int.self) { count = value }
            return count
        }
        #expect(stuck == 0, "no connection idles inside the timed-out transaction")
    }
}
