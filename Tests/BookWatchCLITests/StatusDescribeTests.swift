import BookWatchCore
import BookWatchSQLite
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Testing

@testable import BookWatchCLI

/// `bookwatch status UUID`: one Book described in full.
@Suite struct StatusDescribeTests {
    static let t0 = Date(timeIntervalSince1970: 1_774_000_000)
    static let uuid = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!

    @Test func describesDocumentsGenerationsWebhooksAndTheNextPoll() async throws {
        let cli = try CLIHarness(now: Self.t0.addingTimeInterval(600))
        let store = try SQLiteBookStore(path: cli.databasePath)
        try await StoreFixtures.retrievedWithResults(in: store, book: Self.uuid, pk: 42, endpoints: ["summary", "cash_flow_features"], at: Self.t0)
        // Reopened by a rejected document: generation 2 finishes, its job fails once.
        let documents = [
            DocumentSnapshot(ref: DocumentRef(pk: 1), status: .completed),
            DocumentSnapshot(ref: DocumentRef(pk: 2, uuid: "doc-2"), status: .rejected, rejectionReason: "blurry scan"),
        ]
        _ = try await store.apply(
            .snapshot(.present(pk: 42, status: .verified, documents: documents)),
            to: Self.uuid,
            at: Self.t0.addingTimeInterval(60),
            options: .init()
        )
        let job = try #require(try await store.claimAnalyticsJob(owner: "t", now: Self.t0.addingTimeInterval(61), lease: 60))
        _ = try await store.apply(
            .analytics(
                generation: job.generation,
                .transientError("HTTP 503"),
                JobReport(claim: job.claim, retryAt: Self.t0.addingTimeInterval(900))
            ),
            to: Self.uuid,
            at: Self.t0.addingTimeInterval(62),
            options: .init()
        )
        let body = #"{"event_name":"book.verified","book_uuid":"\#(Self.uuid)"}"#
        _ = try await store.appendToInbox(
            InboxDelivery(
                requestID: "r1",
                receivedAt: Self.t0.addingTimeInterval(59),
                bookUUID: Self.uuid,
                bookPK: 42,
                event: "book.verified",
                body: Array(body.utf8),
                authenticated: true
            )
        )
        try await store.close()

        #expect(await cli.run(["status", Self.uuid.rawValue]) == 0, "\(cli.standardError)")
        let text = cli.standardOutput
        #expect(text.contains("State:        retrieving, generation 2"))
        #expect(text.contains("pk 42, book status VERIFIED"))
        #expect(text.contains("Documents (2):"))
        #expect(text.contains("REJECTED") && text.contains("blurry scan"))
        #expect(text.contains("1: job complete, 0 attempt(s), retrieved 2026-03-20T09:46:40Z (10m ago), stored cash_flow_features, summary"))
        #expect(text.contains("2: job pending, 1 attempt(s), next try 2026-03-20T10:01:40Z (in 5m)"))
        #expect(text.contains("last error: HTTP 503"))
        #expect(text.contains("book.verified") && text.contains("pending") && text.contains("verified"))
        #expect(text.contains("Next poll:"))
        // `--json` keeps the documented one-record document.
        #expect(await cli.run(["status", Self.uuid.rawValue, "--json"]) == 0)
        #expect(cli.standardOutput.contains("\"books\""))
        #expect(await cli.run(["status", "1a2b3c4d-0000-4000-8000-00000000000b"]) == 1)
    }

    /// A Book seen deleted says so, and that it is still looked at now and then.
    @Test func aDeletedBookShowsWhenItWasSeenGoneAndItsSlowPolls() async throws {
        let cli = try CLIHarness(now: Self.t0.addingTimeInterval(600))
        let store = try SQLiteBookStore(path: cli.databasePath)
        try await StoreFixtures.retrieved(in: store, book: Self.uuid, pk: 42, at: Self.t0)
        for seconds in [100.0, 200] {
            _ = try await store.apply(
                .snapshot(.gone, PollAnswer(takenAt: Self.t0.addingTimeInterval(seconds))),
                to: Self.uuid,
                at: Self.t0.addingTimeInterval(seconds),
                options: .init()
            )
        }
        try await store.close()
        #expect(await cli.run(["status", Self.uuid.rawValue]) == 0, "\(cli.standardError)")
        let text = cli.standardOutput
        #expect(text.contains("State:        deleted, generation 1"))
        #expect(text.contains("Deleted:      seen gone since 2026-03-20T09:48:20Z"))
        #expect(text.contains("a slow look for a Book seen deleted"))
        #expect(!text.contains("Doubt:"))
    }
}
