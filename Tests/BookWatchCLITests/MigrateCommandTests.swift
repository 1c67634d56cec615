import BookWatchCore
import BookWatchPostgres
import BookWatchSQLite
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Testing

/// `bookwatch migrate --to postgres://...`: what a stopped SQLite node kept reads the same from
/// PostgreSQL afterwards, and the refusals. Needs a PostgreSQL server (scripts/with-postgres.sh);
/// scripts/migrate-test.sh migrates a running scenario mid-way and finishes it on PostgreSQL.
enum MigrateTestServer {
    static let url = ProcessInfo.processInfo.environment["BOOKWATCH_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let required = ProcessInfo.processInfo.environment["BOOKWATCH_REQUIRE_POSTGRES"] == "1"
    static var available: Bool { url != nil || required }
}

@Suite(.enabled(if: MigrateTestServer.available, "needs BOOKWATCH_TEST_POSTGRES_URL (scripts/with-postgres.sh)"))
struct MigrateCommandTests {
    func destination() throws -> String {
        let base = try #require(MigrateTestServer.url, "BOOKWATCH_REQUIRE_POSTGRES=1 but BOOKWATCH_TEST_POSTGRES_URL is not set")
        return base + (base.contains("?") ? "&" : "?") + "sslmode=disable&schema=m_\(UUID().uuidString.prefix(8).lowercased())"
    }

    static let complete = BookUUID("0a3b4c5d-0000-4000-8000-000000000001")!
    static let open = BookUUID("0a3b4c5d-0000-4000-8000-000000000002")!
    static let untracked = BookUUID("0a3b4c5d-0000-4000-8000-000000000003")!

    /// A SQLite node's database: a complete Book with results (its notification waiting), one
    /// with a job running under a claim (`lease` seconds), a tombstone, a label, a delivery, a
    /// page and the shared estimate, written at `t`.
    func fill(_ path: String, at t: Date, lease: TimeInterval = 600) async throws {
        let store = try SQLiteBookStore(path: path)
        try await StoreFixtures.retrievedWithResults(in: store, book: Self.complete, pk: 1, endpoints: ["summary", "income"], at: t)
        try await StoreFixtures.openJob(in: store, book: Self.open, pk: 2, at: t)
        let job = try #require(try await store.claimAnalyticsJob(owner: "old-node", now: t, lease: lease))
        try await store.storeAnalyticsPage(
            AnalyticsPage(
                bookUUID: Self.open,
                generation: job.generation,
                endpoint: "enriched_txns",
                offset: 0,
                body: Array("[1]".utf8),
                retrievedAt: t
            ),
            claim: job.claim
        )
        _ = try await store.apply(.command(.track(.operator)), to: Self.untracked, at: t, options: .init())
        _ = try await store.apply(.command(.untrack), to: Self.untracked, at: t, options: .init())
        try await store.setLabel("loan-7", of: Self.complete)
        _ = try await store.appendToInbox(
            InboxDelivery(
                requestID: "r-1",
                receivedAt: t,
                bookUUID: Self.complete,
                bookPK: 1,
                event: "book.verified",
                body: Array("{}".utf8),
                remoteAddress: "10.0.0.1",
                authenticated: true
            )
        )
        try await store.updateSharedState("webhook_loss_estimate", at: t) { _ in "{\"estimate\":0.5}" }
        try await store.close()
    }

    @Test func whatTheNodeKeptReadsTheSameFromPostgreSQLAndNothingIsRetrievedAgain() async throws {
        let cli = try CLIHarness()
        let t = cli.now.addingTimeInterval(-3600)
        try await fill(cli.databasePath, at: t)
        let url = try destination()
        // One row per batch: every table is read in key order across batches.
        #expect(await cli.run(["migrate", "--to", url, "--batch-rows", "1"]) == 0, "\(cli.standardError)")
        for line in [
            "books: 3 rows", "documents: 2 rows", "book_labels: 1 rows", "webhook_inbox: 1 rows", "analytics_jobs: 2 rows",
            "analytics_results: 2 rows", "analytics_pages: 1 rows", "notifications: 1 rows", "deployment_state: 1 rows",
        ] {
            #expect(cli.standardOutput.contains(line), "\(line) in \(cli.standardOutput)")
        }

        let sqlite = try SQLiteBookStore(path: cli.databasePath)
        let postgres = try await PostgresBookStore.open(url: url)
        for uuid in [Self.complete, Self.open, Self.untracked] {
            #expect(try await String(describing: postgres.book(uuid)) == String(describing: sqlite.book(uuid)))
            #expect(try await postgres.analyticsResults(for: uuid, endpoint: nil) == sqlite.analyticsResults(for: uuid, endpoint: nil))
            #expect(try await postgres.analyticsJobs(of: uuid) == sqlite.analyticsJobs(of: uuid))
            #expect(try await postgres.isUntracked(uuid) == sqlite.isUntracked(uuid))
        }
        #expect(try await postgres.books(state: nil, label: "loan-7", limit: nil).map(\.uuid) == [Self.complete])
        #expect(try await postgres.inboxContains(requestID: "r-1"))
        #expect(try await postgres.sharedState("webhook_loss_estimate") == "{\"estimate\":0.5}")
        #expect(try await postgres.pendingNotifications(limit: 10).map(\.bookUUID) == [Self.complete])
        #expect(try await postgres.analyticsPages(Self.open, generation: 1, endpoint: "enriched_txns").map(\.body) == [Array("[1]".utf8)])
        // Nothing left to retrieve but the open Book's job, free for any replica (the old node's
        // claim was released); the complete Book has no job due.
        let claimed = try #require(try await postgres.claimAnalyticsJob(owner: "replica", now: cli.now, lease: 60))
        #expect(claimed.bookUUID == Self.open)
        #expect(try await postgres.claimAnalyticsJob(owner: "replica", now: cli.now, lease: 60) == nil)
        // Ids continue past the copied ones.
        _ = try await postgres.appendToInbox(
            InboxDelivery(requestID: "r-2", receivedAt: cli.now, bookUUID: nil, bookPK: 9, event: "book.verified", body: [], remoteAddress: nil)
        )
        let ids = try await postgres.inboxDeliveries(after: 0, limit: 10).map(\.id)
        #expect(ids.count == 2 && ids[1] > ids[0])
        let another = BookUUID("0a3b4c5d-0000-4000-8000-000000000004")!
        try await StoreFixtures.openJob(in: postgres, book: another, pk: 4, at: cli.now)
        #expect(try await postgres.analyticsJobs(of: another).count == 1)
        try await sqlite.close()
        try await postgres.close()
    }

    @Test func aDestinationInUseOrASourceWrittenJustNowIsRefusedAndNothingIsCopied() async throws {
        let cli = try CLIHarness()
        let url = try destination()
        // Written a moment ago: serve may still be running.
        try await fill(cli.databasePath, at: cli.now.addingTimeInterval(-5))
        #expect(await cli.run(["migrate", "--to", url]) == 1)
        #expect(cli.standardError.contains("written to 5 s ago: stop serve first"))
        // Quiet for two minutes, but a job's claim is held for eight more.
        let quiet = try CLIHarness(now: cli.now)
        try await fill(quiet.databasePath, at: cli.now.addingTimeInterval(-120))
        #expect(await quiet.run(["migrate", "--to", url]) == 1)
        #expect(quiet.standardError.contains("has a claim held until"))
        let postgres = try await PostgresBookStore.open(url: url)
        #expect(try await postgres.books(state: nil, limit: nil).isEmpty)
        // A destination that already holds a Book.
        _ = try await postgres.apply(.command(.track(.operator)), to: Self.open, at: cli.now, options: .init())
        #expect(await cli.run(["migrate", "--to", url, "--force"]) == 1)
        #expect(cli.standardError.contains("already holds 1 rows"))
        #expect(try await postgres.books(state: nil, limit: nil).map(\.uuid) == [Self.open])
        try await postgres.close()
        // Usage: a destination that is not PostgreSQL.
        #expect(await cli.run(["migrate", "--to", "/tmp/other.sqlite"]) == 2)
    }
}
