import BookWatchClocks
import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation
import OcrolusAPI
import Synchronization
import Testing

/// `enriched_txns` comes in pages: every page is fetched once and kept, a retry asks only for the
/// pages not stored yet, and the result is every page's bytes as Ocrolus sent them.
@Suite struct PagedAnalyticsTests {
    static let uuid = FreshViewTests.uuid
    static let finished = FreshViewTests.finished

    /// Ocrolus with `items` enriched transactions, answered by `offset`/`limit`; `script` replaces
    /// the answer to the n-th page call (0-based) with an error or a 425; every page asked is logged.
    final class PagedAPI: OcrolusAPIClient {
        struct State {
            var pagesAsked: [Int] = []
            var summaryCalls = 0
            var statusCalls = 0
            var script: [Int: AdversaryTests.API.AnalyticsReply] = [:]
            var ignoreOffset = false
            /// Items per page at most, whatever the limit asked (a server's own cap).
            var cap = Int.max
        }
        let items: Int
        let clock: ManualClock
        let state = Mutex(State())

        init(items: Int, clock: ManualClock) {
            self.items = items
            self.clock = clock
        }

        func bookStatus(uuid: BookUUID, priority: RequestPriority) async throws -> BookStatusResult {
            state.withLock { $0.statusCalls += 1 }
            return BookStatusResult(uuid: uuid, pk: 1, snapshot: PagedAnalyticsTests.finished, requestedAt: clock.now())
        }

        func bookStatus(pk: Int, priority: RequestPriority) async throws -> BookStatusResult {
            try await bookStatus(uuid: PagedAnalyticsTests.uuid, priority: priority)
        }

        func analytics(uuid: BookUUID, endpoint: AnalyticsEndpoint, priority: RequestPriority) async throws -> AnalyticsAnswer {
            state.withLock { $0.summaryCalls += 1 }
            return .ready(Array(#"{"status":200,"response":{"summary":{}}}"#.utf8))
        }

        func analytics(
            uuid: BookUUID,
            endpoint: AnalyticsEndpoint,
            page: AnalyticsPageRequest,
            priority: RequestPriority,
            beforeSend: @Sendable () async throws -> Void
        ) async throws -> AnalyticsAnswer {
            try await beforeSend()
            let (reply, offset, cap) = state.withLock { state -> (AdversaryTests.API.AnalyticsReply?, Int, Int) in
                let call = state.pagesAsked.count
                state.pagesAsked.append(page.offset)
                return (state.script.removeValue(forKey: call), state.ignoreOffset ? 0 : page.offset, state.cap)
            }
            switch reply {
            case .answer(let answer): return answer
            case .error(let error): throw error
            case nil: break
            }
            let range = min(offset, items)..<min(offset + min(page.limit, cap), items)
            // Amounts as decimal numbers: kept byte for byte, never re-encoded through a Double.
            let transactions = range.map { #"{"txn_pk":\#($0),"amount":1234567890.10}"# }.joined(separator: ",")
            return .ready(Array(#"{"status":200,"response":{"offset":\#(offset),"enriched_transactions":[\#(transactions)]}}"#.utf8))
        }
    }

    static func start(
        items: Int,
        script: [Int: AdversaryTests.API.AnalyticsReply] = [:]
    ) async throws -> (IngressHarness, PagedAPI, Watcher, ManualClock) {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = PagedAPI(items: items, clock: clock)
        api.state.withLock { $0.script = script }
        let watcher = AdversaryTests.watcher(h, api, clock: clock) { $0.analytics = [.summary, .enrichedTransactions] }
        _ = try await h.store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        _ = try await h.store.apply(.snapshot(Self.finished), to: Self.uuid, at: clock.now(), options: .init())
        return (h, api, watcher, clock)
    }

    static func storedPages(_ h: IngressHarness) async throws -> [[String: Any]] {
        let result = try #require(try await h.store.analyticsResults(for: uuid, endpoint: "enriched_txns").first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.body)) as? [String: Any])
        #expect(object["endpoint"] as? String == "enriched_txns" && object["limit"] as? Int == AnalyticsPaging.defaultLimit)
        return try #require(object["pages"] as? [[String: Any]])
    }

    @Test func everyPageIsFetchedOnceAndKeptAsSent() async throws {
        let (h, api, watcher, _) = try await Self.start(items: 2_500)
        #expect(try await watcher.runAnalytics() == 1)
        // A short page says nothing of the end (a server may cap pages below the limit): the
        // next page starts after the items received, and an empty one ends them.
        #expect(api.state.withLock { $0.pagesAsked } == [0, 1000, 2000, 2500])
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
        let pages = try await Self.storedPages(h)
        let counts = pages.map { (($0["response"] as? [String: Any])?["enriched_transactions"] as? [Any])?.count }
        #expect(counts == [1000, 1000, 500, 0])
        let result = try #require(try await h.store.analyticsResults(for: Self.uuid, endpoint: "enriched_txns").first)
        #expect(String(decoding: result.body, as: UTF8.self).contains(#""amount":1234567890.10}"#))
        // The pages in progress are gone once the result is stored.
        #expect(try await h.store.analyticsPages(Self.uuid, generation: 1, endpoint: "enriched_txns").isEmpty)
    }

    @Test func aFullLastPageCostsOneEmptyPageMore() async throws {
        let (h, api, watcher, _) = try await Self.start(items: 2_000)
        #expect(try await watcher.runAnalytics() == 1)
        #expect(api.state.withLock { $0.pagesAsked } == [0, 1000, 2000])
        #expect(try await Self.storedPages(h).count == 3)
    }

    /// An error midway keeps the pages (the retry asks only for the rest); a 425 midway does not:
    /// the analytics are being made again, and the pages already stored may be the previous
    /// generation's (chaos seed 109), so all of them are fetched again once ready.
    @Test func aRetryAsksOnlyForThePagesNotStoredYetUnlessA425CameMidway() async throws {
        let unavailable = OcrolusError(.transient, endpoint: "analytics/enriched_txns", httpStatus: 503, message: "unavailable")
        // The third page call fails (offset 2000), then the retry's first page call answers 425.
        let (h, api, watcher, clock) = try await Self.start(items: 3_500, script: [2: .error(unavailable), 3: .answer(.notReady(retryAfter: nil))])
        #expect(try await watcher.runAnalytics() == 1)
        #expect(try await h.store.analyticsPages(Self.uuid, generation: 1, endpoint: "enriched_txns").map(\.offset) == [0, 1000])
        // Each wait outlives the last view: a confirming poll first, then the job.
        clock.advance(by: 3600)
        _ = try await watcher.pollDue()
        #expect(try await watcher.runAnalytics() == 1)  // 425 on the page at 2000: waits, pages discarded
        #expect(try await h.store.analyticsPages(Self.uuid, generation: 1, endpoint: "enriched_txns").isEmpty)
        clock.advance(by: 3600)
        _ = try await watcher.pollDue()
        _ = try await watcher.runAnalytics()
        #expect(api.state.withLock { $0.pagesAsked } == [0, 1000, 2000, 2000, 0, 1000, 2000, 3000, 3500])
        #expect(api.state.withLock { $0.summaryCalls } == 1)
        #expect(try await Self.storedPages(h).count == 5)
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
    }

    @Test func aReopenBetweenPagesDropsThePagesWithTheGeneration() async throws {
        // The second page fails (an error keeps the first; a 425 would discard it).
        let unavailable = OcrolusError(.transient, endpoint: "analytics/enriched_txns", httpStatus: 503, message: "unavailable")
        let (h, _, watcher, clock) = try await Self.start(items: 1_500, script: [1: .error(unavailable)])
        #expect(try await watcher.runAnalytics() == 1)
        #expect(try await h.store.analyticsPages(Self.uuid, generation: 1, endpoint: "enriched_txns").count == 1)
        _ = try await h.store.apply(
            .snapshot(FreshViewTests.reopened, PollAnswer(takenAt: clock.now())),
            to: Self.uuid,
            at: clock.now(),
            options: .init()
        )
        #expect(try await h.store.analyticsPages(Self.uuid, generation: 1, endpoint: "enriched_txns").isEmpty)
    }

    @Test func aServerIgnoringTheOffsetFailsTheJobInsteadOfStoringAResultCutShort() async throws {
        let (h, api, watcher, _) = try await Self.start(items: 5_000)
        api.state.withLock { $0.ignoreOffset = true }
        #expect(try await watcher.runAnalytics() == 1)
        #expect(api.state.withLock { $0.pagesAsked } == [0, 1000])
        let record = try #require(try await h.store.book(Self.uuid))
        #expect(record.machine.phase == .failed)
        #expect(record.analytics?.lastError?.contains("repeats the page at 0") == true)
        #expect(try await h.store.analyticsResults(for: Self.uuid, endpoint: "enriched_txns").isEmpty)
    }

    @Test func aServerCappingPagesBelowTheLimitLosesNothing() async throws {
        let (h, api, watcher, _) = try await Self.start(items: 1_200)
        api.state.withLock { $0.cap = 400 }
        #expect(try await watcher.runAnalytics() == 1)
        #expect(api.state.withLock { $0.pagesAsked } == [0, 400, 800, 1200])
        #expect(try await Self.storedPages(h).count == 4)
    }
}
