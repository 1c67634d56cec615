import BookWatchClocks
import BookWatchCore
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import Synchronization
import Testing

/// Analytics are retrieved on a fresh view of the Book when webhooks are not trusted: a job that
/// waited (425s, errors, a dead replica's lease) first gets a status poll, which either confirms
/// the finish or sees the reopen, instead of fetching what may be the next generation's analytics.
@Suite struct FreshViewTests {
    static let uuid = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!
    static let finished = BookSnapshot.present(
        pk: 1,
        status: .verified,
        documents: [
            DocumentSnapshot(ref: DocumentRef(pk: 1, uuid: "doc-1"), status: .completed)
        ]
    )
    static let reopened = BookSnapshot.present(
        pk: 1,
        status: .verifying,
        documents: [
            DocumentSnapshot(ref: DocumentRef(pk: 1, uuid: "doc-1"), status: .completed),
            DocumentSnapshot(ref: DocumentRef(pk: 2, uuid: "doc-2"), status: .processing),
        ]
    )

    /// Answers status polls with `status` and counts every call.
    final class ScriptedAPI: OcrolusAPIClient {
        let status: Mutex<BookSnapshot>
        let calls = Mutex((status: 0, analytics: 0))
        init(_ snapshot: BookSnapshot) { status = Mutex(snapshot) }
        func bookStatus(uuid: BookUUID, priority: RequestPriority) async throws -> BookStatusResult {
            calls.withLock { $0.status += 1 }
            return BookStatusResult(uuid: uuid, pk: 1, snapshot: status.withLock { $0 })
        }
        func bookStatus(pk: Int, priority: RequestPriority) async throws -> BookStatusResult {
            try await bookStatus(uuid: FreshViewTests.uuid, priority: priority)
        }
        func analytics(uuid: BookUUID, endpoint: AnalyticsEndpoint, priority: RequestPriority) async throws -> AnalyticsAnswer {
            calls.withLock { $0.analytics += 1 }
            return .ready(Array(#"{"summary":{}}"#.utf8))
        }
    }

    /// A Book seen finished an hour ago, its job still pending, and a watcher whose webhooks are silent.
    func setUp(_ api: ScriptedAPI) async throws -> (IngressHarness, Watcher, ManualClock) {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let watcher = h.watcher(client: api, clock: clock)
        _ = try await h.store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        _ = try await h.store.apply(.snapshot(Self.finished), to: Self.uuid, at: clock.now(), options: .init())
        await clock.advance(by: 3700)  // no webhook for over an hour: silent
        #expect(await watcher.refreshSilence())
        return (h, watcher, clock)
    }

    @Test func aStaleViewIsConfirmedByAPollBeforeRetrieving() async throws {
        let api = ScriptedAPI(Self.finished)
        let (h, watcher, clock) = try await setUp(api)
        #expect(try await watcher.runAnalytics() == 1)
        #expect(api.calls.withLock { $0 } == (status: 0, analytics: 0))  // put back, poll requested
        #expect(try await h.store.book(Self.uuid)?.pendingPollReason == .confirm)
        #expect(try await watcher.pollDue() == 1)
        #expect(watcher.stats.polls[.confirm] == 1)
        await clock.advance(by: 20)
        #expect(try await watcher.runAnalytics() == 1)
        #expect(api.calls.withLock { $0 } == (status: 2, analytics: 1))  // the confirming poll, then the view after
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
    }

    @Test func aReopenSeenByTheConfirmingPollSupersedesTheJob() async throws {
        let api = ScriptedAPI(Self.reopened)
        let (h, watcher, clock) = try await setUp(api)
        #expect(try await watcher.runAnalytics() == 1)
        #expect(try await watcher.pollDue() == 1)
        await clock.advance(by: 20)
        #expect(try await watcher.runAnalytics() == 0)  // nothing to retrieve: generation 1 was superseded
        #expect(api.calls.withLock { $0.analytics } == 0)
        let record = try #require(try await h.store.book(Self.uuid))
        #expect(record.machine.phase == .processing && record.machine.generation == 2)
        #expect(try await h.store.analyticsCounts().jobs["superseded"] == 1)
    }
}

/// The first webhook of an unknown Book tracks it and is applied, once.
@Suite struct AutoTrackInboxTests {
    @Test func theFirstHintOfAnUnknownBookIsAppliedAfterTrackingIt() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = FreshViewTests.ScriptedAPI(FreshViewTests.finished)
        let watcher = h.watcher(client: api, clock: clock)
        let body = #"{"event_name":"document.upload_succeeded","book_uuid":"09c52985-2f05-4022-a738-9277cc335c7e","uploaded_doc_pk":7}"#
        _ = try await h.store.appendToInbox(
            InboxDelivery(
                requestID: "first",
                receivedAt: clock.now(),
                bookUUID: FreshViewTests.uuid,
                bookPK: nil,
                event: "document.upload_succeeded",
                body: Array(body.utf8)
            )
        )
        #expect(try await watcher.processInbox() == 1)
        #expect(watcher.stats.autoTracked == 1 && watcher.stats.inboxProcessed == 1)
        let record = try #require(try await h.store.book(FreshViewTests.uuid))
        #expect(record.machine.documents.map(\.ref.pk) == [7] && record.machine.lastWebhookAt != nil)
        #expect(try await h.store.pendingInboxCount() == 0)
    }
}
