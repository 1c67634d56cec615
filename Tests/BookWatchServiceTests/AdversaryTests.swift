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

/// The holes an independent fake Ocrolus found (issue "Nothing doubled, nothing lost"), each
/// driven through the watcher against a scripted API on a manual clock.
@Suite struct AdversaryTests {
    static let uuid = FreshViewTests.uuid
    static let finished = FreshViewTests.finished
    static let verifying = BookSnapshot.present(
        pk: 1,
        status: .verifying,
        documents: [
            DocumentSnapshot(ref: DocumentRef(pk: 1, uuid: "doc-1"), status: .processing)
        ]
    )

    /// A scripted Ocrolus: status answers and analytics answers from queues (the last one repeats),
    /// either of which may be held until the test releases it; every call is counted.
    final class API: OcrolusAPIClient {
        enum StatusAnswer: Sendable {
            case snapshot(BookSnapshot)
            case error(OcrolusError)
        }
        enum AnalyticsReply: Sendable {
            case answer(AnalyticsAnswer)
            case error(OcrolusError)
        }
        struct State {
            var status: [StatusAnswer]
            var analytics: [AnalyticsReply]
            var statusCalls = 0
            var analyticsCalls = 0
            var holdStatus = false
            var heldStatus: [CheckedContinuation<Void, Never>] = []
            var holdAnalyticsBeforeSend = false
            /// Analytics calls about these Books are held (after `beforeSend`) until `release()`.
            var holdAnalyticsOf: Set<BookUUID> = []
            var heldAnalytics: [CheckedContinuation<Void, Never>] = []
            /// Answers to a status call by pk name the pk asked (as the real client requires);
            /// false: they name none (an answer that leaves the pk out).
            var echoesPK = true
        }
        let state: Mutex<State>
        let clock: ManualClock

        init(clock: ManualClock, status: [StatusAnswer], analytics: [AnalyticsReply] = [.answer(.ready(Array(#"{"summary":{}}"#.utf8)))]) {
            self.clock = clock
            state = Mutex(State(status: status, analytics: analytics))
        }

        var calls: (status: Int, analytics: Int) { state.withLock { ($0.statusCalls, $0.analyticsCalls) } }
        var heldCount: Int { state.withLock { $0.heldStatus.count + $0.heldAnalytics.count } }

        func release() {
            let held = state.withLock { state in
                defer {
                    state.heldStatus = []
                    state.heldAnalytics = []
                }
                return state.heldStatus + state.heldAnalytics
            }
            for continuation in held { continuation.resume() }
        }

        func bookStatus(uuid: BookUUID, priority: RequestPriority) async throws -> BookStatusResult {
            let sentAt = clock.now()
            if state.withLock({ $0.holdStatus }) {
                await withCheckedContinuation { continuation in state.withLock { $0.heldStatus.append(continuation) } }
            }
            let answer = state.withLock { state -> StatusAnswer in
                state.statusCalls += 1
                return state.status.count > 1 ? state.status.removeFirst() : state.status[0]
            }
            switch answer {
            case .snapshot(let snapshot): return BookStatusResult(uuid: uuid, pk: 1, snapshot: snapshot, requestedAt: sentAt)
            case .error(let error): throw error
            }
        }

        func bookStatus(pk: Int, priority: RequestPriority) async throws -> BookStatusResult {
            var result = try await bookStatus(uuid: AdversaryTests.uuid, priority: priority)
            // As the real client: an answer naming another pk is an error.
            result.pk = state.withLock { $0.echoesPK } ? pk : nil
            return result
        }

        func analytics(uuid: BookUUID, endpoint: AnalyticsEndpoint, priority: RequestPriority) async throws -> AnalyticsAnswer {
            let reply = state.withLock { state -> AnalyticsReply in
                state.analyticsCalls += 1
                return state.analytics.count > 1 ? state.analytics.removeFirst() : state.analytics[0]
            }
            switch reply {
            case .answer(let answer): return answer
            case .error(let error): throw error
            }
        }

        /// Like the real client: `beforeSend` runs after the (here: scripted) limiter wait.
        func analytics(
            uuid: BookUUID,
            endpoint: AnalyticsEndpoint,
            priority: RequestPriority,
            beforeSend: @Sendable () async throws -> Void
        ) async throws -> AnalyticsAnswer {
            if state.withLock({ $0.holdAnalyticsBeforeSend }) {
                await withCheckedContinuation { continuation in state.withLock { $0.heldAnalytics.append(continuation) } }
            }
            try await beforeSend()
            if state.withLock({ $0.holdAnalyticsOf.contains(uuid) }) {
                await withCheckedContinuation { continuation in state.withLock { $0.heldAnalytics.append(continuation) } }
            }
            return try await analytics(uuid: uuid, endpoint: endpoint, priority: priority)
        }
    }

    static let unavailable = OcrolusError(.transient, endpoint: "analytics/summary", httpStatus: 503, message: "unavailable")

    /// A Book tracked at creation and seen finished (its job open), and a watcher on a clock of
    /// its own whose API answers from `makeAPI`.
    static func finishedBook(
        makeAPI: (ManualClock) -> API,
        configure: (inout WatcherConfiguration) -> Void = { _ in }
    ) async throws -> (IngressHarness, ManualClock, API, Watcher) {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = makeAPI(clock)
        let watcher = Self.watcher(h, api, clock: clock, configure: configure)
        _ = try await h.store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        _ = try await h.store.apply(.snapshot(Self.finished), to: Self.uuid, at: clock.now(), options: .init())
        return (h, clock, api, watcher)
    }

    static func watcher(
        _ h: IngressHarness,
        _ api: any OcrolusAPIClient,
        clock: ManualClock,
        owner: String = "w1",
        configure: (inout WatcherConfiguration) -> Void = { _ in }
    ) -> Watcher {
        var configuration = WatcherConfiguration()
        configuration.owner = owner
        configure(&configuration)
        return Watcher(
            store: h.store,
            client: api,
            clock: clock,
            configuration: configuration,
            health: h.health,
            logger: quietLogger,
            metrics: h.metrics,
            random: { 0.5 }
        )
    }

    /// Waits (in real time, briefly) until `condition` holds: for a call parked in the scripted API.
    static func until(_ condition: () -> Bool) async throws {
        for _ in 0..<2000 where !condition() { try await Task.sleep(for: .milliseconds(1)) }
        try #require(condition())  // else stop here, rather than await a call that is not held
    }

    // MARK: 0. a retrieval never waits behind its own confirmation

    @Test func aConfirmingAnswerReleasesTheWaitingJobAtOnceAndWaitingIsNoAttempt() async throws {
        let (h, clock, api, watcher) = try await Self.finishedBook(makeAPI: { API(clock: $0, status: [.snapshot(Self.finished)]) })
        clock.advance(by: 3700)
        #expect(await watcher.refreshSilence())
        #expect(try await watcher.runAnalytics() == 1)  // stale view: put back behind a confirm poll
        #expect(api.calls.analytics == 0)
        #expect(try await watcher.pollDue() == 1)
        // The answer made the job due now: no timer to wait for, no attempt spent.
        let job = try #require(try await h.store.book(Self.uuid)?.analytics)
        #expect(job.dueAt == clock.now() && job.attempts == 0)
        #expect(try await watcher.runAnalytics() == 1)
        #expect(api.calls == (status: 2, analytics: 1))  // the confirming poll, then the view after
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
    }

    // MARK: the view after a retrieval (found by the chaos search)

    /// Two documents, both finished: what the Book shows after a second one was uploaded and
    /// processed while the job waited (its webhook lost).
    static let grown = BookSnapshot.present(
        pk: 1,
        status: .verified,
        documents: [
            DocumentSnapshot(ref: DocumentRef(pk: 1, uuid: "doc-1"), status: .verificationComplete),
            DocumentSnapshot(ref: DocumentRef(pk: 2, uuid: "doc-2"), status: .verificationComplete),
        ]
    )

    @Test func analyticsFetchedWhileTheBookGrewAreDroppedAndTheNextGenerationRetrievesThemOnce() async throws {
        let (h, _, api, watcher) = try await Self.finishedBook(makeAPI: { API(clock: $0, status: [.snapshot(Self.grown)]) })
        #expect(try await watcher.runAnalytics(limit: 1) == 1)
        // The view after shows a document generation 1 did not have: superseded, nothing kept.
        let record = try #require(try await h.store.book(Self.uuid))
        #expect(record.machine.generation == 2 && record.machine.phase == .retrieving)
        #expect(try await h.store.analyticsResults(for: Self.uuid, endpoint: nil).isEmpty)
        #expect(try await h.store.pendingNotifications(limit: 10).isEmpty)
        // Generation 2 retrieves once, its view after agreeing.
        #expect(try await watcher.runAnalytics(limit: 1) == 1)
        #expect(api.calls == (status: 2, analytics: 2))
        let results = try await h.store.analyticsResults(for: Self.uuid, endpoint: nil)
        #expect(results.map(\.generation) == [2])
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
        #expect(try await h.store.pendingNotifications(limit: 10).map(\.generation) == [2])
    }

    /// Found by the chaos search (seed 1955): the finish was applied from a replica whose clock
    /// ran 10 minutes ahead, so this replica's view after, asked later in real time, reads as
    /// older and is dropped; it confirmed the generation anyway, keeping analytics fetched across
    /// a reopen. A dropped view after showing a new document confirms nothing: the job waits, and
    /// a newer view supersedes.
    @Test func aViewAfterOlderThanTheAppliedAnswerConfirmsNothing() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.snapshot(Self.grown)])
        let watcher = Self.watcher(h, api, clock: clock)
        _ = try await h.store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        let ahead = PollAnswer(takenAt: clock.now().addingTimeInterval(600))
        _ = try await h.store.apply(.snapshot(Self.finished, ahead), to: Self.uuid, at: clock.now(), options: .init())
        #expect(try await watcher.runAnalytics(limit: 1) == 1)
        var record = try #require(try await h.store.book(Self.uuid))
        #expect(record.machine.generation == 1 && record.machine.phase == .retrieving, "not confirmed by a dropped answer")
        #expect(try await h.store.pendingNotifications(limit: 10).isEmpty)
        #expect(api.calls == (status: 1, analytics: 1))
        // Once this replica's views are newer than the applied one, the view after shows the new
        // document: generation 1 is superseded with what it stored, generation 2 retrieves.
        clock.advance(by: 700)
        #expect(try await watcher.runAnalytics(limit: 1) == 1)
        record = try #require(try await h.store.book(Self.uuid))
        #expect(record.machine.generation == 2)
        #expect(try await h.store.pendingNotifications(limit: 10).isEmpty)
        #expect(try await h.store.analyticsResults(for: Self.uuid, endpoint: nil).allSatisfy { $0.generation == 2 })
    }

    /// A view after dropped as older than the applied answer still says what Ocrolus showed after
    /// the analytics answered: when that is the generation as it finished, it confirms (a replica
    /// whose clock runs behind is not stuck until it catches up). One showing a covered document
    /// unfinished (held back as a reopen doubt, the machine unchanged) confirms nothing.
    @Test(arguments: [true, false])
    func aViewAfterConfirmsByWhatItShows(showsTheGeneration: Bool) async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.snapshot(showsTheGeneration ? Self.finished : Self.verifying)])
        let watcher = Self.watcher(h, api, clock: clock)
        _ = try await h.store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        let ahead = PollAnswer(takenAt: clock.now().addingTimeInterval(showsTheGeneration ? 600 : 0))
        _ = try await h.store.apply(.snapshot(Self.finished, ahead), to: Self.uuid, at: clock.now(), options: .init())
        clock.advance(by: 1)
        #expect(try await watcher.runAnalytics(limit: 1) == 1)
        let record = try #require(try await h.store.book(Self.uuid))
        #expect(record.machine.generation == 1)
        #expect(record.machine.phase == (showsTheGeneration ? .complete : .retrieving))
        #expect(try await h.store.pendingNotifications(limit: 10).map(\.generation) == (showsTheGeneration ? [1] : []))
    }

    /// From the maintainer's review: a newer answer (a replica ahead) showed a covered document
    /// unfinished, held back as a reopen doubt; an older view after showing the generation
    /// finished is dropped and cannot settle that doubt, so it confirms nothing.
    @Test func aDroppedViewAfterDoesNotSettleAReopenDoubt() async throws {
        let (h, clock, _, watcher) = try await Self.finishedBook(makeAPI: { API(clock: $0, status: [.snapshot(Self.finished)]) })
        let ahead = PollAnswer(takenAt: clock.now().addingTimeInterval(600))
        _ = try await h.store.apply(.snapshot(Self.verifying, ahead), to: Self.uuid, at: clock.now(), options: .init())
        #expect(try await h.store.book(Self.uuid)?.machine.doubt?.kind == .reopen)
        clock.advance(by: 1)
        #expect(try await watcher.runAnalytics(limit: 1) == 1)
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .retrieving)
        #expect(try await h.store.pendingNotifications(limit: 10).isEmpty)
    }

    /// Found by a review: a gone answer as the view after would confirm an earlier gone answer,
    /// supersede the fully fetched generation and, when the Book came back, fetch it again as a
    /// new generation. The view after's "gone" shows no new Document: the generation completes.
    @Test func aGoneViewAfterCompletesTheGenerationAndARevivalFetchesNothingAgain() async throws {
        let (h, clock, api, watcher) = try await Self.finishedBook(makeAPI: { API(clock: $0, status: [.snapshot(.gone), .snapshot(Self.finished)]) })
        _ = try await h.store.apply(.snapshot(.gone, PollAnswer(takenAt: clock.now())), to: Self.uuid, at: clock.now(), options: .init())
        clock.advance(by: 90)
        #expect(try await watcher.runAnalytics(limit: 1) == 1)
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
        // Ocrolus answers again: the same documents, finished; nothing is fetched twice.
        _ = try await h.store.apply(
            .snapshot(Self.finished, PollAnswer(takenAt: clock.now())),
            to: Self.uuid,
            at: clock.now(),
            options: .init()
        )
        _ = try await watcher.runAnalytics()
        #expect(try await h.store.analyticsResults(for: Self.uuid, endpoint: nil).map(\.generation) == [1])
        #expect(api.calls.analytics == 1)
    }

    @Test func aFailedViewAfterKeepsTheResultsAndCostsOnlyAStatusCallAgain() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let unavailable = OcrolusError(.transient, endpoint: "book_status", httpStatus: 503, message: "unavailable")
        let api = API(clock: clock, status: [.error(unavailable), .snapshot(Self.finished)])
        let watcher = Self.watcher(h, api, clock: clock)
        _ = try await h.store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        _ = try await h.store.apply(.snapshot(Self.finished), to: Self.uuid, at: clock.now(), options: .init())
        #expect(try await watcher.runAnalytics() == 1)
        #expect(api.calls == (status: 1, analytics: 1))
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .retrieving)
        #expect(try await h.store.pendingNotifications(limit: 10).isEmpty)
        clock.advance(by: 5)  // the error's backoff; the view is still fresh (no confirming poll first)
        #expect(try await watcher.runAnalytics() == 1)
        #expect(api.calls == (status: 2, analytics: 1))  // the view after again; the fetch is kept
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
        #expect(try await h.store.analyticsResults(for: Self.uuid, endpoint: nil).count == 1)
    }

    // MARK: 4. 425 is waiting, not failing; a ready event releases the job

    @Test func notReadyNeverCountsAsAnAttemptAndAnAnalyticsReadyWebhookReleasesTheJob() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(
            clock: clock,
            status: [.snapshot(Self.finished)],
            analytics: Array(repeating: .answer(.notReady(retryAfter: nil)), count: 30) + [.answer(.ready([1]))]
        )
        let watcher = Self.watcher(h, api, clock: clock)
        _ = try await h.store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        _ = try await h.store.apply(.snapshot(Self.finished), to: Self.uuid, at: clock.now(), options: .init())
        // Twenty 425s over a while: each wait is an eighth of the job's age, none is an attempt.
        for _ in 0..<20 {
            #expect(try await watcher.runAnalytics() == 1)
            let job = try #require(try await h.store.book(Self.uuid)?.analytics)
            #expect(job.attempts == 0 && job.state == .pending)
            let wait = try #require(job.dueAt).timeIntervalSince(clock.now())
            #expect(wait >= 1 && wait <= max(2, (clock.now().timeIntervalSince(h.clock.now()) / 8)) + 0.001)
            clock.advance(to: try #require(job.dueAt))
        }
        // A 5xx now is the first real error: retried within seconds, not after a grown backoff.
        api.state.withLock { $0.analytics.insert(.error(Self.unavailable), at: 0) }
        #expect(try await watcher.runAnalytics() == 1)
        let afterError = try #require(try await h.store.book(Self.uuid)?.analytics)
        #expect(afterError.attempts == 1)
        #expect(try #require(afterError.dueAt).timeIntervalSince(clock.now()) <= 2)
        clock.advance(to: try #require(afterError.dueAt))
        #expect(try await watcher.runAnalytics() == 1)  // 425 again: the job waits a while
        let waiting = try #require(try await h.store.book(Self.uuid)?.analytics?.dueAt)
        #expect(waiting > clock.now().addingTimeInterval(5))
        // book.completed says analytics are ready: the job is due at once.
        let body = #"{"event_name":"book.completed","book_uuid":"\#(Self.uuid)"}"#
        _ = try await h.store.appendToInbox(
            InboxDelivery(
                requestID: "ready",
                receivedAt: clock.now(),
                bookUUID: Self.uuid,
                bookPK: nil,
                event: "book.completed",
                body: Array(body.utf8),
                authenticated: true
            )
        )
        #expect(try await watcher.processInbox() == 1)
        #expect(try await h.store.book(Self.uuid)?.analytics?.dueAt == clock.now())
    }

    /// Stores a `document.upload_succeeded` delivery about `uuid` in the inbox, as the ingress would.
    static func deliverUpload(
        _ h: IngressHarness,
        id: String,
        body: String,
        at now: Date,
        authenticated: Bool,
        hint: WebhookHint? = nil
    ) async throws {
        let delivery = InboxDelivery(
            requestID: id,
            receivedAt: now,
            bookUUID: uuid,
            bookPK: nil,
            event: "document.upload_succeeded",
            body: Array(body.utf8),
            authenticated: authenticated,
            hint: hint
        )
        _ = try await h.store.appendToInbox(delivery)
    }

    /// The watcher applies the hint admission decoded and the row keeps: the body is not read
    /// again (here it is not even JSON, and the delivery still counts).
    @Test func theInboxRowsHintIsAppliedWithoutDecodingTheBodyAgain() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.snapshot(Self.finished)], analytics: [])
        let watcher = Self.watcher(h, api, clock: clock)
        _ = try await h.store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        let hint = WebhookHint(event: .documentUploaded, document: DocumentRef(pk: 77))
        let old = #"{"event_name":"document.upload_succeeded","book_uuid":"\#(Self.uuid)","uploaded_doc_pk":78}"#
        let rows: [(String, String, WebhookHint?)] = [("kept", "not json", hint), ("old", old, nil), ("garbage", "not json either", nil)]
        for (id, body, kept) in rows {
            try await Self.deliverUpload(h, id: id, body: body, at: clock.now(), authenticated: true, hint: kept)
        }
        #expect(try await watcher.processInbox() == 3)
        // A row stored without a hint (before the inbox kept them) is decoded from its body; one
        // whose body is not a webhook is marked undecodable, never applied.
        #expect(try await h.store.book(Self.uuid)?.machine.documents.map(\.ref.pk) == [77, 78])
        #expect(try await h.store.pendingInbox(limit: 10).isEmpty)
    }

    @Test func aJobGivesUpByAgeAndSaysSo() async throws {
        let (h, clock, _, watcher) = try await Self.finishedBook(
            makeAPI: { API(clock: $0, status: [.snapshot(Self.finished)], analytics: [.answer(.notReady(retryAfter: nil))]) },
            configure: { $0.analyticsGiveUp = 3600 }
        )
        #expect(try await watcher.runAnalytics() == 1)
        clock.advance(by: 3601)
        #expect(try await watcher.runAnalytics() == 1)
        let record = try #require(try await h.store.book(Self.uuid))
        #expect(record.machine.phase == .failed)
        #expect(record.machine.failureReason?.hasPrefix("gave up after 1 h waiting for analytics (0 errors)") == true)
    }

    // MARK: 7. leases are fenced

    @Test func aWorkerThatLostItsLeaseDuringALimiterWaitMakesNoCall() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.snapshot(Self.finished)])
        api.state.withLock { $0.holdAnalyticsBeforeSend = true }
        // One slot: A's window is full while its call waits, so A asks for no other job meanwhile.
        let first = Self.watcher(h, api, clock: clock, owner: "replica-a") { $0.jobConcurrency = 1 }
        let second = Self.watcher(h, api, clock: clock, owner: "replica-b")
        _ = try await h.store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        _ = try await h.store.apply(.snapshot(Self.finished), to: Self.uuid, at: clock.now(), options: .init())
        // Replica A claims the job; its call waits (a paused limiter) past the lease.
        let stalled = Task { try await first.runAnalytics() }
        try await Self.until { api.heldCount == 1 }
        clock.advance(by: first.configuration.lease + 1)
        api.state.withLock { $0.holdAnalyticsBeforeSend = false }
        // (A recent poll saw it still finished, so B needs no confirming poll first.)
        _ = try await h.store.apply(.snapshot(Self.finished), to: Self.uuid, at: clock.now(), options: .init())
        #expect(try await second.runAnalytics() == 1)  // B re-arms the expired lease and retrieves
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
        api.release()
        _ = try await stalled.value
        // A's renewal before sending found the job gone: no second call, nothing stored twice.
        #expect(api.calls.analytics == 1)
        #expect(try await h.store.analyticsCounts().results == 1)
        #expect(
            PrometheusSamples.sum(
                PrometheusSamples.parse(String(decoding: h.metrics.exposition(), as: UTF8.self)),
                "bookwatch_analytics_late_results_total"
            ) == 1
        )
    }

    /// Shutdown while a job's last allowed attempt waits on its call, which then fails: the
    /// attempt is not counted as an error, the job is not given up, and the next start retrieves.
    /// A finished Book's job worked by a round that is cancelled (shutdown) while its analytics
    /// call is out; the call then ends with the API's first analytics reply.
    static func shutdownDuringAnalyticsCall(
        analytics: [API.AnalyticsReply],
        configure: (inout WatcherConfiguration) -> Void
    ) async throws -> (IngressHarness, ManualClock, API, Watcher) {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.snapshot(Self.finished)], analytics: analytics)
        api.state.withLock { $0.holdAnalyticsOf = [Self.uuid] }
        let watcher = Self.watcher(h, api, clock: clock, configure: configure)
        _ = try await h.store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        _ = try await h.store.apply(.snapshot(Self.finished), to: Self.uuid, at: clock.now(), options: .init())
        let round = Task { try await watcher.runAnalytics() }
        try await Self.until { api.heldCount == 1 }
        round.cancel()  // shutdown
        api.release()
        _ = try? await round.value
        api.state.withLock { $0.holdAnalyticsOf = [] }
        return (h, clock, api, watcher)
    }

    @Test func anAnalyticsAttemptCutShortByShutdownIsNotAnErrorOrAGiveUp() async throws {
        let configure = { (configuration: inout WatcherConfiguration) in configuration.analyticsRetry.maxAttempts = 1 }
        // The call ends in a transient error (the only attempt allowed).
        let (h, clock, api, watcher) = try await Self.shutdownDuringAnalyticsCall(
            analytics: [.error(Self.unavailable), .answer(.ready(Array(#"{"summary":{}}"#.utf8)))],
            configure: configure
        )
        #expect(watcher.stats.analyticsErrors == 0)
        #expect(try await h.store.book(Self.uuid)?.machine.phase != .failed)
        clock.advance(by: watcher.configuration.lease + 1)  // the next start: the lease lapsed
        let next = Self.watcher(h, api, clock: clock, configure: configure)
        _ = try await h.store.apply(.snapshot(Self.finished), to: Self.uuid, at: clock.now(), options: .init())
        #expect(try await next.runAnalytics() == 1)
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
    }

    /// Ocrolus answers "Book not found" for a few minutes (an incident): the complete Book is
    /// marked deleted after two such answers a minimum apart, but polled slowly after it; the
    /// first slow poll that shows it revives it in the same generation, nothing fetched again.
    @Test func aBookDeletedDuringAnIncidentComesBackWithItsGenerationAtTheNextSlowPoll() async throws {
        let (h, clock, api, watcher) = try await Self.finishedBook(makeAPI: {
            API(clock: $0, status: [.snapshot(Self.finished), .snapshot(.gone), .snapshot(.gone), .snapshot(Self.finished)])
        })
        #expect(try await watcher.runAnalytics() == 1)
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
        try await h.store.requestPoll(Self.uuid, at: clock.now(), reason: .operator)
        for _ in 0..<2 {
            clock.advance(to: max(clock.now(), try #require(try await h.store.book(Self.uuid)?.nextPollAt)))
            #expect(try await watcher.pollDue() == 1)
        }
        let deleted = try #require(try await h.store.book(Self.uuid))
        #expect(deleted.machine.phase == .deleted)
        clock.advance(to: try #require(deleted.nextPollAt))
        #expect(try await watcher.pollDue() == 1)
        let back = try #require(try await h.store.book(Self.uuid))
        #expect(back.machine.phase == .complete && back.machine.generation == 1)
        #expect(api.calls.analytics == 1, "nothing fetched again")
        #expect(try await h.store.analyticsJobs(of: Self.uuid).map(\.generation) == [1])
    }

    /// The view after refused once (a permission flapping): the stored analytics stay, the job
    /// waits for the next answer without counting an error, and completes when it shows the Book.
    @Test func aViewAfterRefusedOnceIsADoubtNotAFailedJob() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let refused = OcrolusError(.permanent, endpoint: "book_status", httpStatus: 403, code: 2102, message: "no permission")
        let api = API(clock: clock, status: [.error(refused), .snapshot(Self.finished)])
        let watcher = Self.watcher(h, api, clock: clock)
        _ = try await h.store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        _ = try await h.store.apply(.snapshot(Self.finished), to: Self.uuid, at: clock.now(), options: .init())
        #expect(try await watcher.runAnalytics() == 1)
        let waiting = try #require(try await h.store.book(Self.uuid))
        #expect(waiting.machine.phase == .retrieving && waiting.machine.doubt?.kind == .refused)
        #expect(waiting.analytics?.state == .pending && waiting.analytics?.attempts == 0)
        #expect(watcher.stats.analyticsErrors == 0)
        clock.advance(to: try #require(waiting.nextPollAt))
        #expect(try await watcher.pollDue() == 1)  // the Book shows: the job is due at once
        #expect(try await watcher.runAnalytics() == 1)
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
        #expect(api.calls.analytics == 1, "the stored analytics were kept")
    }

    /// Shutdown as an analytics 200 comes back: the answer is still stored (the write is not the
    /// cancelled task's), so the next start asks only for the view after, and Ocrolus answers
    /// the generation's analytics once.
    @Test func anAnalyticsAnswerArrivingAtShutdownIsKeptAndNotFetchedAgain() async throws {
        // The 200 arrives as the shutdown begins.
        let (h, clock, api, watcher) = try await Self.shutdownDuringAnalyticsCall(
            analytics: [.answer(.ready(Array(#"{"summary":{}}"#.utf8)))],
            configure: { _ in }
        )
        #expect(try await h.store.storedEndpoints(Self.uuid, generation: 1) == ["summary"])
        #expect(watcher.stats.analyticsErrors == 0)
        clock.advance(by: watcher.configuration.lease + 1)  // the next start: the lease lapsed
        let next = Self.watcher(h, api, clock: clock)
        // The resumed job waits for a fresh status answer (its confirming poll), then asks only
        // for the view after.
        #expect(try await next.runAnalytics() == 1)
        #expect(try await next.pollDue() == 1)
        #expect(try await next.runAnalytics() == 1)
        #expect(api.calls.analytics == 1, "not fetched again")
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
        #expect(try await h.store.analyticsResults(for: Self.uuid, endpoint: nil).map(\.generation) == [1])
    }

    /// The same for a status poll: cut short by shutdown (its call failing with an error of its
    /// own), it is not counted as a failed poll.
    @Test func aPollCutShortByShutdownIsNotAFailure() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.error(Self.unavailable), .snapshot(Self.verifying)])
        api.state.withLock { $0.holdStatus = true }
        let watcher = Self.watcher(h, api, clock: clock)
        _ = try await h.store.apply(.command(.track(.operator)), to: Self.uuid, at: clock.now(), options: .init())
        let round = Task { try await watcher.pollDue() }
        try await Self.until { api.heldCount == 1 }
        round.cancel()  // shutdown
        api.release()
        _ = try? await round.value
        #expect(watcher.stats.pollFailures == 0)
    }

    // MARK: 2. an answer that left before a webhook is not a reopen

    @Test func anAnswerInFlightAcrossATrustedBodyIsStaleAndTheGenerationIsRetrievedOnce() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.snapshot(Self.verifying), .snapshot(Self.finished)])
        let watcher = Self.watcher(h, api, clock: clock)
        _ = try await h.store.apply(.command(.track(.operator)), to: Self.uuid, at: clock.now(), options: .init())
        _ = try await h.store.apply(
            .webhook(WebhookHint(event: .documentUploaded, document: DocumentRef(pk: 1, uuid: "doc-1"))),
            to: Self.uuid,
            at: clock.now(),
            options: .init()
        )
        api.state.withLock { $0.holdStatus = true }
        let poll = Task { try await watcher.pollDue() }
        try await Self.until { api.heldCount == 1 }
        // While the status call is in flight, a signed book.verified body finishes the Book.
        clock.advance(by: 2)
        let body = BookInput.webhook(
            WebhookHint(
                event: .bookVerified,
                listedDocuments: [
                    DocumentSnapshot(ref: DocumentRef(uuid: "doc-1"), status: .completed)
                ],
                authenticated: true
            )
        )
        _ = try await h.store.apply(body, to: Self.uuid, at: clock.now(), options: TransitionOptions(webhooksTrusted: true))
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .retrieving)
        // The older answer (still VERIFYING) arrives: dropped, not a reopen.
        clock.advance(by: 1)
        api.state.withLock { $0.holdStatus = false }
        api.release()
        #expect(try await poll.value == 1)
        let record = try #require(try await h.store.book(Self.uuid))
        #expect(record.machine.phase == .retrieving && record.machine.generation == 1)
        #expect(try await h.store.analyticsCounts().jobs == ["pending": 1])
        // Untrusted now (the estimate has no evidence yet): a confirming poll, then the retrieval.
        #expect(try await watcher.runAnalytics() == 1)
        #expect(try await watcher.pollDue() == 1)
        #expect(try await watcher.runAnalytics() == 1)
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
        #expect(api.calls.analytics == 1)
    }

    // MARK: 1. one odd answer never deletes a Book

    @Test func aBareNotFoundIsTransientAndOcrolusSaysGoneTwiceBeforeABookIsDeleted() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let bare = OcrolusError(.transient, endpoint: "book_status", httpStatus: 404, message: "<html>Not Found</html>")
        let api = API(clock: clock, status: [.error(bare), .snapshot(.gone), .snapshot(.gone)])
        let watcher = Self.watcher(h, api, clock: clock)
        _ = try await h.store.apply(.command(.track(.operator)), to: Self.uuid, at: clock.now(), options: .init())
        #expect(try await watcher.pollDue() == 1)
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .tracking)  // a transient error: retried
        clock.advance(to: try #require(try await h.store.book(Self.uuid)?.nextPollAt))
        #expect(try await watcher.pollDue() == 1)  // Ocrolus says gone once: a doubt, not a deletion
        let doubting = try #require(try await h.store.book(Self.uuid))
        #expect(doubting.machine.phase == .tracking && doubting.machine.doubt?.kind == .gone)
        let second = try #require(doubting.nextPollAt)
        #expect(second.timeIntervalSince(clock.now()) >= h.store.schedule.minimum)
        clock.advance(to: second)
        #expect(try await watcher.pollDue() == 1)
        let deleted = try #require(try await h.store.book(Self.uuid))
        #expect(deleted.machine.phase == .deleted)
        // Only slow polls from now on (about a maximum, then doubling), not the minimum's.
        #expect(try #require(deleted.nextPollAt).timeIntervalSince(clock.now()) >= 0.9 * h.store.schedule.maximum)
        // A signed webhook about it asks once more (the mark may be wrong); an unsigned one does not.
        for (id, signed) in [("unsigned", false), ("signed", true)] {
            let body = #"{"event_name":"document.upload_succeeded","book_uuid":"\#(Self.uuid)","uploaded_doc_pk":9}"#
            try await Self.deliverUpload(h, id: id, body: body, at: clock.now(), authenticated: signed)
            #expect(try await watcher.processInbox() == 1)
            #expect(try await h.store.book(Self.uuid)?.pendingPollReason == (signed ? .webhookHint : nil))
        }
    }

    // MARK: 5. failed polls back off per Book

    @Test func failingPollsBackOffPerBookDropUrgencyAndARefusalMarksTheBookFailed() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let failing = OcrolusError(.transient, endpoint: "book_status", httpStatus: 200, message: "unreadable status body")
        let api = API(
            clock: clock,
            status: Array(repeating: .error(failing), count: 12) + [
                .error(OcrolusError(.permanent, endpoint: "book_status", httpStatus: 403, code: 2102, message: "no permission")),
                .error(OcrolusError(.permanent, endpoint: "book_status", httpStatus: 403, code: 2102, message: "no permission")),
                .snapshot(Self.verifying),
            ]
        )
        let watcher = Self.watcher(h, api, clock: clock)
        _ = try await h.store.apply(.command(.track(.operator)), to: Self.uuid, at: clock.now(), options: .init())
        var waits: [TimeInterval] = []
        for failure in 1...12 {
            #expect(try await watcher.pollDue() == 1)
            let record = try #require(try await h.store.book(Self.uuid))
            #expect(record.pendingPollReason == (failure == 1 ? .operator : nil), "urgent for the first retry only")
            let next = try #require(record.nextPollAt)
            waits.append(next.timeIntervalSince(clock.now()))
            clock.advance(to: next)
        }
        // 10 s doubling (jitter draws 0.5: three quarters of each ceiling), capped at the maximum.
        #expect(waits.prefix(4) == [7.5, 15, 30, 60])
        #expect(waits.last == 0.75 * h.store.schedule.maximum)
        #expect(try await watcher.pollDue() == 1)  // 403/2102: a doubt, asked again soon
        let doubted = try #require(try await h.store.book(Self.uuid))
        #expect(doubted.machine.phase == .tracking && doubted.machine.doubt?.kind == .refused)
        clock.advance(to: try #require(doubted.nextPollAt))
        #expect(try await watcher.pollDue() == 1)  // refused again a minimum or more later: for good
        let refused = try #require(try await h.store.book(Self.uuid))
        #expect(refused.machine.phase == .failed && refused.machine.failureReason?.contains("2102") == true)
        #expect(refused.nextPollAt == nil)
        // retry watches it again at once.
        _ = try await h.store.apply(.command(.retry), to: Self.uuid, at: clock.now(), options: .init())
        #expect(try await watcher.pollDue() == 1)
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .processing)
    }

    // MARK: 6. untrack sticks

    @Test func aLateWebhookNeverRetracksAnUntrackedBookAndTrackResumesWhereItLeftOff() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.snapshot(Self.finished)])
        let watcher = Self.watcher(h, api, clock: clock)
        _ = try await h.store.apply(.command(.track(.operator)), to: Self.uuid, at: clock.now(), options: .init())
        #expect(try await watcher.pollDue() == 1)
        #expect(try await watcher.runAnalytics() == 1)
        _ = try await h.store.apply(.command(.untrack), to: Self.uuid, at: clock.now(), options: .init())
        #expect(try await h.store.book(Self.uuid) == nil)
        #expect(try await h.store.isUntracked(Self.uuid))
        let body = #"{"event_name":"book.completed","book_uuid":"\#(Self.uuid)"}"#
        _ = try await h.store.appendToInbox(
            InboxDelivery(
                requestID: "late",
                receivedAt: clock.now(),
                bookUUID: Self.uuid,
                bookPK: nil,
                event: "book.completed",
                body: Array(body.utf8),
                authenticated: true
            )
        )
        #expect(try await watcher.processInbox() == 1)
        #expect(try await h.store.book(Self.uuid) == nil)
        #expect(watcher.stats.autoTracked == 0)
        #expect(
            PrometheusSamples.sum(
                PrometheusSamples.parse(String(decoding: h.metrics.exposition(), as: UTF8.self)),
                "bookwatch_webhooks_untracked_total"
            ) == 1
        )
        // track again: the same finished generation, nothing retrieved twice.
        _ = try await h.store.apply(.command(.track(.operator)), to: Self.uuid, at: clock.now(), options: .init())
        #expect(try await watcher.pollDue() == 1)
        #expect(try await watcher.runAnalytics() == 0)
        let record = try #require(try await h.store.book(Self.uuid))
        #expect(record.machine.phase == .complete && record.machine.generation == 1)
        #expect(api.calls.analytics == 1)
    }

    // MARK: 10. growth has an end

    @Test func processedDeliveriesOlderThanTheRetentionArePrunedOncePerInterval() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.snapshot(Self.finished)])
        let watcher = Self.watcher(h, api, clock: clock) { $0.retention = 600 }
        let body = #"{"event_name":"document.upload_succeeded","book_uuid":"\#(Self.uuid)","uploaded_doc_pk":7}"#
        _ = try await h.store.appendToInbox(
            InboxDelivery(
                requestID: "old",
                receivedAt: clock.now(),
                bookUUID: Self.uuid,
                bookPK: nil,
                event: "document.upload_succeeded",
                body: Array(body.utf8),
                authenticated: true
            )
        )
        #expect(try await watcher.processInbox() == 1)
        #expect(try await watcher.pruneIfDue() == 0)
        #expect(try await h.store.inboxCount() == 1, "younger than the retention: kept")
        clock.advance(by: 1800)
        #expect(try await watcher.pruneIfDue() == 0, "pruned within an hour of the last run: not yet")
        #expect(try await h.store.inboxCount() == 1)
        clock.advance(by: 1801)
        _ = try await watcher.pruneIfDue()
        #expect(try await h.store.inboxCount() == 0)
    }

    // MARK: 9. a restart keeps what was measured

    @Test func aRestartedOrNewReplicaStartsFromTheDeploymentsMeasurements() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.snapshot(Self.finished)])
        // What an earlier run measured: webhooks reliable, the last one 3,000 s ago.
        var reliable = WebhookLossEstimate()
        reliable.observe(announced: 30, missed: 0)
        #expect(!reliable.isLossy)
        let encoded = String(decoding: try JSONEncoder().encode(reliable), as: UTF8.self)
        try await h.store.updateSharedState("webhook_loss_estimate", at: clock.now()) { _ in encoded }
        try await h.store.updateSharedState("last_webhook_at", at: clock.now()) { _ in "\(clock.now().addingTimeInterval(-3000).storageMillis)" }
        let watcher = Self.watcher(h, api, clock: clock)
        #expect(watcher.webhookLoss.isLossy, "a fresh process knows nothing")
        try await watcher.resume()
        #expect(!watcher.webhookLoss.isLossy, "the deployment's estimate")
        #expect(await watcher.refreshSilence() == false)
        clock.advance(by: 700)  // 3,700 s since the deployment's last webhook, 700 s since this start
        #expect(await watcher.refreshSilence())
        // A delivery processed by this replica moves the shared time for the others.
        let body = #"{"event_name":"document.upload_succeeded","book_uuid":"\#(Self.uuid)","uploaded_doc_pk":7}"#
        _ = try await h.store.appendToInbox(
            InboxDelivery(
                requestID: "now",
                receivedAt: clock.now(),
                bookUUID: Self.uuid,
                bookPK: nil,
                event: "document.upload_succeeded",
                body: Array(body.utf8),
                authenticated: true
            )
        )
        #expect(try await watcher.processInbox() == 1)
        #expect(try await h.store.sharedState("last_webhook_at") == "\(clock.now().storageMillis)")
    }

    // MARK: 8. one bad row never blocks a queue

    @Test func aDeliveryThatCannotBeAppliedYetWaitsAloneWhileTheOthersGoOn() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let failing = OcrolusError(.transient, endpoint: "book_status", httpStatus: 503, message: "unavailable")
        let api = API(clock: clock, status: [.error(failing)])
        let watcher = Self.watcher(h, api, clock: clock)
        // First a pk-only delivery about a Book not known here (resolving it needs a status call,
        // which fails), then one about a known Book.
        let pkOnly = #"{"status":"VERIFICATION_COMPLETE","uploaded_doc_pk":5,"book_pk":99}"#
        _ = try await h.store.appendToInbox(
            InboxDelivery(
                requestID: "pk-only",
                receivedAt: clock.now(),
                bookUUID: nil,
                bookPK: 99,
                event: "document.status",
                body: Array(pkOnly.utf8)
            )
        )
        let known = #"{"event_name":"document.upload_succeeded","book_uuid":"\#(Self.uuid)","uploaded_doc_pk":7}"#
        _ = try await h.store.appendToInbox(
            InboxDelivery(
                requestID: "known",
                receivedAt: clock.now(),
                bookUUID: Self.uuid,
                bookPK: nil,
                event: "document.upload_succeeded",
                body: Array(known.utf8)
            )
        )
        #expect(try await watcher.processInbox() == 1)
        #expect(try await h.store.book(Self.uuid) != nil, "the delivery behind the failing one was applied")
        #expect(try await h.store.pendingInboxCount() == 1)
        #expect(try await watcher.processInbox() == 0, "the failed one waits its backoff")
        clock.advance(by: 2)
        _ = try await watcher.processInbox()
        #expect(try await h.store.pendingInbox(limit: 10).first?.attempts == 2, "tried again after its backoff, and counted")
    }

    /// Waits (in real time, briefly) until an async `condition` holds.
    static func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<2000 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(1))
        }
        return false
    }

    static let other = BookUUID("5b1c2f4e-8d3a-4c6b-9e7f-0a1b2c3d4e5f")!

    @Test func aDeliveryWaitingOnASlowStatusAnswerDoesNotHoldUpTheOthers() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.snapshot(Self.verifying)])
        api.state.withLock { $0.holdStatus = true }
        let watcher = Self.watcher(h, api, clock: clock)
        _ = try await h.store.apply(.command(.track(.created)), to: Self.other, at: clock.now(), options: .init())
        // A pk-only delivery about a Book not known here (its status call is slow), then a
        // document event about a known Book: the second is applied while the first waits.
        let pkOnly = #"{"status":"VERIFICATION_COMPLETE","uploaded_doc_pk":5,"book_pk":99}"#
        _ = try await h.store.appendToInbox(
            InboxDelivery(
                requestID: "pk-only",
                receivedAt: clock.now(),
                bookUUID: nil,
                bookPK: 99,
                event: "document.status",
                body: Array(pkOnly.utf8)
            )
        )
        let known = #"{"event_name":"document.verification_succeeded","book_uuid":"\#(Self.other)","doc_uuid":"doc-7"}"#
        _ = try await h.store.appendToInbox(
            InboxDelivery(
                requestID: "known",
                receivedAt: clock.now(),
                bookUUID: Self.other,
                bookPK: nil,
                event: "document.verification_succeeded",
                body: Array(known.utf8),
                authenticated: true
            )
        )
        let round = Task { try await watcher.processInbox() }
        try await Self.until { api.heldCount == 1 }
        #expect(try await Self.eventually { try await h.store.pendingInboxCount() == 1 }, "the known Book's delivery did not wait")
        #expect(try await h.store.book(Self.other)?.machine.documents.first?.hint == .succeeded)
        api.release()
        #expect(try await round.value == 2)
    }

    @Test func oneBooksDeliveriesAreAppliedInOrderSoOneStatusCallResolvesThemAll() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.snapshot(Self.verifying)])
        let watcher = Self.watcher(h, api, clock: clock)
        // Three pk-only deliveries about one Book not known here, claimed in one round: the first
        // one's status call tells the uuid, the others resolve from the store.
        for n in 1...3 {
            let body = #"{"status":"VERIFICATION_COMPLETE","uploaded_doc_pk":\#(n),"book_pk":1}"#
            _ = try await h.store.appendToInbox(
                InboxDelivery(
                    requestID: "pk-\(n)",
                    receivedAt: clock.now(),
                    bookUUID: nil,
                    bookPK: 1,
                    event: "document.status",
                    body: Array(body.utf8)
                )
            )
        }
        #expect(try await watcher.processInbox() == 3)
        #expect(api.calls.status == 1)
        #expect(watcher.stats.autoTracked == 1)
    }

    @Test func aJobMadeDueDuringASlowCallIsWorkedBeforeThatCallReturns() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = API(clock: clock, status: [.snapshot(Self.finished)])
        api.state.withLock { $0.holdAnalyticsOf = [Self.uuid] }
        let watcher = Self.watcher(h, api, clock: clock)
        for uuid in [Self.uuid, Self.other] {
            _ = try await h.store.apply(.command(.track(.created)), to: uuid, at: clock.now(), options: .init())
        }
        _ = try await h.store.apply(.snapshot(Self.finished), to: Self.uuid, at: clock.now(), options: .init())
        let round = Task { try await watcher.runAnalytics() }
        try await Self.until { api.heldCount == 1 }
        // The other Book finishes while the first call is out: a free slot takes its job within a tick.
        _ = try await h.store.apply(.snapshot(Self.finished), to: Self.other, at: clock.now(), options: .init())
        try await Self.until { clock.nextDeadline != nil }
        clock.advance(by: 1)
        #expect(
            try await Self.eventually { try await h.store.book(Self.other)?.machine.phase == .complete },
            "retrieved while the first call was still out"
        )
        #expect(api.heldCount == 1)
        api.release()
        #expect(try await round.value == 2)
        #expect(try await h.store.book(Self.uuid)?.machine.phase == .complete)
    }
}

/// Which kinds of event arrive, as the inbox loop notes them for the loss estimate.
@Suite struct ReceivedKindsTests {
    static let uuid = FreshViewTests.uuid

    static func delivery(_ id: String, _ body: String, uuid: BookUUID?, pk: Int?, event: String, at: Date) -> InboxDelivery {
        InboxDelivery(requestID: id, receivedAt: at, bookUUID: uuid, bookPK: pk, event: event, body: Array(body.utf8), authenticated: true)
    }

    /// pk-only deliveries about a Book not tracked here (auto-track off): the first costs a
    /// status call by pk, the later ones reuse what it told (a pk names one Book for good).
    /// An answer that does not name the pk asked proves nothing about it: not remembered, so
    /// each such delivery asks again.
    @Test(arguments: [true, false])
    func pkOnlyDeliveriesAboutAnUntrackedBookCostOneStatusCall(answersNamePK: Bool) async throws {
        let h = try IngressHarness()
        let clock = h.clock
        let api = AdversaryTests.API(clock: clock, status: [.snapshot(AdversaryTests.verifying)])
        api.state.withLock { $0.echoesPK = answersNamePK }
        let watcher = AdversaryTests.watcher(h, api, clock: clock) { $0.autoTrack = false }
        let body = #"{"status":"VERIFICATION_COMPLETE","uploaded_doc_pk":5,"book_pk":99}"#
        for round in 0..<3 {
            _ = try await h.store.appendToInbox(Self.delivery("pk-\(round)", body, uuid: nil, pk: 99, event: "", at: clock.now()))
            #expect(try await watcher.processInbox() == 1)
        }
        #expect(api.calls.status == (answersNamePK ? 1 : 3))
        #expect(try await h.store.book(AdversaryTests.uuid) == nil, "not tracked: auto-track is off")
    }

    @Test func aTestDeliveryProvesNothingAndBookVerifiedProvesBookFinishes() async throws {
        let h = try IngressHarness()
        let clock = h.clock
        let api = AdversaryTests.API(clock: clock, status: [.snapshot(AdversaryTests.verifying)])
        let watcher = h.watcher(client: api, clock: clock)
        _ = try await h.store.apply(.command(.track(.operator)), to: Self.uuid, at: clock.now(), options: .init())
        // Ocrolus's documented test body: a document status, book_pk 0, no Book.
        let test = #"{"status": "VERIFICATION_COMPLETE", "uploaded_doc_pk": 0, "book_pk": 0}"#
        // Stored as the ingress stores it, with its decoded hint (a document status: the kind
        // that would count as "document events arrive").
        var delivery = Self.delivery("test", test, uuid: nil, pk: 0, event: "", at: clock.now())
        delivery.hint = try DecodedWebhook.decode(Array(test.utf8)).hint
        #expect(delivery.hint.flatMap { WebhookLossEstimate.Kind(receiving: $0.event) } == .documents)
        _ = try await h.store.appendToInbox(delivery)
        _ = try await watcher.processInbox()
        #expect(watcher.webhookLoss.lastReceived.isEmpty)

        let verified = #"{"event_name":"book.verified","book_uuid":"\#(Self.uuid)"}"#
        _ = try await h.store.appendToInbox(Self.delivery("v", verified, uuid: Self.uuid, pk: nil, event: "book.verified", at: clock.now()))
        _ = try await watcher.processInbox()
        #expect(watcher.webhookLoss.lastReceived == [.bookFinishes: clock.now()])
        #expect(watcher.webhookLoss.measuredKind(at: clock.now()) == .bookFinishes)
        // Shared: a new process reads it back.
        let restarted = h.watcher(client: api, clock: clock)
        try await restarted.resume()
        #expect(restarted.webhookLoss.lastReceived == [.bookFinishes: clock.now()])
    }
}

/// A flood of deliveries that change no Book (auto-track off, Books not tracked here) is marked in
/// one transaction per round, not one commit each: the single writer is what the webhook door's
/// group commits wait for.
@Suite struct InboxMarkBatchTests {
    @Test func deliveriesThatChangeNoBookAreMarkedInOneTransaction() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = AdversaryTests.API(clock: clock, status: [])
        let watcher = AdversaryTests.watcher(h, api, clock: clock) { $0.autoTrack = false }
        let untracked = BookUUID("0b0b0b0b-0000-4000-8000-000000000001")!
        _ = try await h.store.apply(.command(.track(.created)), to: untracked, at: clock.now(), options: .init())
        _ = try await h.store.apply(.command(.untrack), to: untracked, at: clock.now(), options: .init())
        let count = 24
        for index in 0..<count {
            let book = index.isMultiple(of: 3) ? untracked : BookUUID("0b0b0b0b-0000-4000-8000-\(String(format: "%012d", 100 + index))")!
            let body = #"{"event_name":"document.verification_succeeded","book_uuid":"\#(book)","doc_uuid":"d\#(index)"}"#
            _ = try await h.store.appendToInbox(
                InboxDelivery(
                    requestID: "flood-\(index)",
                    receivedAt: clock.now(),
                    bookUUID: book,
                    bookPK: nil,
                    event: "document.verification_succeeded",
                    body: Array(body.utf8),
                    authenticated: true,
                    hint: WebhookHint(event: .documentVerified, document: DocumentRef(uuid: "d\(index)"))
                )
            )
        }
        let before = h.store.activity.writesBegun
        #expect(try await watcher.processInbox() == count)
        let writes = h.store.activity.writesBegun - before
        // One transition attempt per delivery (no Book row: nothing written, no flush), the claim,
        // the shared measurements, and one transaction for every mark (28 here); a commit per
        // mark would be `count` more.
        #expect(writes <= count + 4, "\(writes) write transactions")
        #expect(try await h.store.pendingInbox(limit: 100).isEmpty)
        #expect(try await h.store.isUntracked(untracked))
        // Each row keeps its own ending through the batch: the tombstone's deliveries say so.
        let aboutUntracked = try await h.store.recentDeliveries(about: untracked, limit: 100).map(\.outcome)
        #expect(aboutUntracked.count == 8 && aboutUntracked.allSatisfy { $0 == "ignored: untracked" })
        let other = BookUUID("0b0b0b0b-0000-4000-8000-000000000101")!
        #expect(try await h.store.recentDeliveries(about: other, limit: 10).map(\.outcome) == ["ignored"])
        #expect(try await watcher.processInbox() == 0)  // nothing claimed twice
    }

    /// Shutdown cancels a round while one Book's status call is out: what the round already
    /// decided about the others is still written (the store refuses work from a cancelled task;
    /// before, the held marks were dropped and every such delivery was decided again, and counted
    /// again, after the restart).
    @Test func aCancelledRoundStillWritesTheMarksItDecided() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let api = AdversaryTests.API(clock: clock, status: [.snapshot(AdversaryTests.finished)])
        api.state.withLock { $0.holdStatus = true }
        let watcher = AdversaryTests.watcher(h, api, clock: clock) { $0.autoTrack = false }
        let untracked = BookUUID("0b0b0b0b-0000-4000-8000-000000000002")!
        _ = try await h.store.apply(.command(.track(.created)), to: untracked, at: clock.now(), options: .init())
        _ = try await h.store.apply(.command(.untrack), to: untracked, at: clock.now(), options: .init())
        for (id, uuid, pk) in [("about-untracked", untracked as BookUUID?, nil as Int?), ("pk-only", nil, 99)] {
            _ = try await h.store.appendToInbox(
                InboxDelivery(
                    requestID: id,
                    receivedAt: clock.now(),
                    bookUUID: uuid,
                    bookPK: pk,
                    event: "document.verification_succeeded",
                    body: Array("{}".utf8),
                    authenticated: true,
                    hint: WebhookHint(event: .documentVerified)
                )
            )
        }
        let untrackedCount = {
            PrometheusSamples.sum(
                PrometheusSamples.parse(String(decoding: h.metrics.exposition(), as: UTF8.self)),
                "bookwatch_webhooks_untracked_total"
            )
        }
        let round = Task { try await watcher.processInbox() }
        try await AdversaryTests.until { api.heldCount == 1 && untrackedCount() == 1 }
        round.cancel()
        api.release()
        _ = try? await round.value
        #expect(try await h.store.recentDeliveries(about: untracked, limit: 10).map(\.outcome) == ["ignored: untracked"])
        #expect(untrackedCount() == 1)
    }

    /// A pk-only delivery stored and already tried one attempt short of `Watcher.inboxMaxAttempts`.
    static func storeARowAtItsLastAttempt(_ h: IngressHarness, clock: ManualClock, requestID: String) async throws {
        let body = #"{"event_name":"document.verification_succeeded","book_pk":5}"#
        _ = try await h.store.appendToInbox(
            InboxDelivery(
                requestID: requestID,
                receivedAt: clock.now(),
                bookUUID: nil,
                bookPK: 5,
                event: "document.verification_succeeded",
                body: Array(body.utf8),
                authenticated: true,
                hint: WebhookHint(event: .documentVerified)
            )
        )
        for _ in 0..<59 {  // one attempt short of `Watcher.inboxMaxAttempts`
            let id = try #require(try await h.store.claimInbox(owner: "w1", now: clock.now(), limit: 1, lease: 60).first?.id)
            try await h.store.deferInbox(id, owner: "w1", until: clock.now())
        }
    }

    /// A poison row (its last attempt failed) is marked with the round's other marks, given up,
    /// and not counted as processed.
    @Test func aRowGivenUpIsMarkedButNotCounted() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let failing = OcrolusError(.transient, endpoint: "book/status", httpStatus: 503, message: "unavailable")
        let api = AdversaryTests.API(clock: clock, status: [.error(failing)])
        let watcher = AdversaryTests.watcher(h, api, clock: clock)
        try await Self.storeARowAtItsLastAttempt(h, clock: clock, requestID: "poison")
        #expect(try await watcher.processInbox() == 0)  // given up: not counted
        #expect(api.calls.status == 1)
        #expect(try await h.store.pendingInbox(limit: 10).isEmpty)  // but marked
        clock.advance(by: 3600)
        #expect(try await watcher.processInbox() == 0)
        #expect(api.calls.status == 1)
    }

    /// Shutdown during a row's last attempt is not that attempt failing: the row is neither given
    /// up nor deferred, and the next run (its lease lapsed) applies it.
    @Test func aLastAttemptCutShortByShutdownIsNotGivenUp() async throws {
        let h = try IngressHarness()
        let clock = ManualClock(start: h.clock.now())
        let failing = OcrolusError(.transient, endpoint: "book/status", httpStatus: 503, message: "cancelled")
        let api = AdversaryTests.API(clock: clock, status: [.error(failing), .snapshot(AdversaryTests.verifying)])
        api.state.withLock { $0.holdStatus = true }
        let watcher = AdversaryTests.watcher(h, api, clock: clock)
        try await Self.storeARowAtItsLastAttempt(h, clock: clock, requestID: "last-attempt")
        let round = Task { try await watcher.processInbox() }
        try await AdversaryTests.until { api.heldCount == 1 }  // the last attempt's status call is in flight
        round.cancel()  // shutdown
        api.release()  // the call ends in an error, as a cancelled request does
        _ = try? await round.value
        #expect(api.calls.status == 1)
        let pending = try await h.store.pendingInbox(limit: 10)
        #expect(pending.count == 1 && pending.first?.attempts == 59)  // neither given up nor deferred
        api.state.withLock { $0.holdStatus = false }
        clock.advance(by: 3600)  // the lease lapsed: the next run claims it again
        #expect(try await watcher.processInbox() == 1)
        #expect(try await h.store.pendingInbox(limit: 10).isEmpty)
    }
}
