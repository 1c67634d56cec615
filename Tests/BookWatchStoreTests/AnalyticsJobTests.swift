import BookWatchCore
import BookWatchSQLite
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Testing

@Suite struct AnalyticsJobTests {
    let uuid = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!
    let t0 = Date(timeIntervalSince1970: 1_774_000_000)

    func storeWithOpenJob(_ dir: borrowing TemporaryDirectory) async throws -> SQLiteBookStore {
        let store = try SQLiteBookStore(path: dir.file("db.sqlite"), random: { 0.5 })
        try await StoreFixtures.openJob(in: store, book: uuid, at: t0)
        return store
    }

    @Test func claimLeasesWithANewTokenBeforeAnyCallAndIsNoAttempt() async throws {
        let dir = try TemporaryDirectory()
        let store = try await storeWithOpenJob(dir)
        let job = try #require(try await store.claimAnalyticsJob(owner: "w1", now: t0, lease: 120))
        #expect(job.bookUUID == uuid && job.generation == 1 && job.attempts == 0 && job.claim == JobClaim(owner: "w1", token: 1))
        #expect(job.leaseExpiresAt == t0.addingTimeInterval(120))
        // Leased: nobody else gets it.
        #expect(try await store.claimAnalyticsJob(owner: "w2", now: t0, lease: 120) == nil)
        #expect(try await store.book(uuid)?.analytics?.state == .running)
        // Before expiry the sweeper leaves it; after, it is pending and due at once.
        #expect(try await store.rearmExpiredLeases(now: t0.addingTimeInterval(60)) == 0)
        #expect(try await store.rearmExpiredLeases(now: t0.addingTimeInterval(121)) == 1)
        let again = try #require(try await store.claimAnalyticsJob(owner: "w2", now: t0.addingTimeInterval(121), lease: 120))
        #expect(again.attempts == 0 && again.claim == JobClaim(owner: "w2", token: 2))
    }

    @Test func onStartupEveryLeaseOfAPreviousProcessIsRearmedDueNow() async throws {
        let dir = try TemporaryDirectory()
        let store = try await storeWithOpenJob(dir)
        _ = try await store.claimAnalyticsJob(owner: "dead-process", now: t0, lease: 120)
        let restart = t0.addingTimeInterval(5)
        #expect(try await store.recoverLeases(owner: "new", now: restart) == 1)
        #expect(try await store.nextJobDueAt() == restart)
        #expect(try await store.claimAnalyticsJob(owner: "new", now: restart, lease: 120) != nil)
    }

    @Test func theLastResultCommitsWithTheCompletion() async throws {
        let dir = try TemporaryDirectory()
        let store = try await storeWithOpenJob(dir)
        let result = AnalyticsResult(bookUUID: uuid, generation: 1, endpoint: "summary", body: [1], retrievedAt: t0)
        let outcome = try await store.apply(.analytics(generation: 1, .stored, JobReport(results: [result])), to: uuid, at: t0, options: .init())
        #expect(outcome?.actions.contains(.notifyRetrieved(generation: 1)) == true)
        #expect(try await store.analyticsResults(for: uuid, endpoint: nil) == [result])
        #expect(try await store.book(uuid)?.analytics?.state == .complete)
        #expect(try await store.storedEndpoints(uuid, generation: 1) == ["summary"])
    }

    @Test func aCompleteBookIsPolledForReopensOnlyWithinTheRetentionWindow() async throws {
        let dir = try TemporaryDirectory()
        let store = try SQLiteBookStore(
            path: dir.file("db.sqlite"),
            schedule: PollSchedule(minimum: 60, maximum: 1800, retention: 3600),
            random: { 0 }
        )
        _ = try await store.apply(.command(.track(.operator)), to: uuid, at: t0, options: .init())
        let finished = BookSnapshot.present(
            pk: 1,
            status: .verified,
            documents: [
                DocumentSnapshot(ref: DocumentRef(pk: 1), status: .completed)
            ]
        )
        _ = try await store.apply(.snapshot(finished), to: uuid, at: t0, options: .init())
        _ = try await store.apply(.analytics(generation: 1, .stored), to: uuid, at: t0, options: .init())
        #expect(try await store.book(uuid)?.nextPollAt == t0.addingTimeInterval(1800))
        // A retention poll 50 minutes after finishing: the next one would fall past the hour.
        _ = try await store.apply(.snapshot(finished), to: uuid, at: t0.addingTimeInterval(3000), options: .init())
        #expect(try await store.book(uuid)?.machine.phase == .complete)
        #expect(try await store.book(uuid)?.nextPollAt == nil)
    }

    @Test func webhooksPushTheScheduledPollOutButNeverDelayAnUrgentOne() async throws {
        let dir = try TemporaryDirectory()
        let store = try SQLiteBookStore(path: dir.file("db.sqlite"), schedule: PollSchedule(minimum: 60, maximum: 1800), random: { 0 })
        _ = try await store.apply(.command(.track(.created)), to: uuid, at: t0, options: .init())
        let first = try #require(try await store.book(uuid)?.nextPollAt)
        #expect(first == t0.addingTimeInterval(60))  // no webhook yet: full jitter from the minimum (draw 0)
        let alive = BookInput.webhook(WebhookHint(event: .documentUploaded, document: DocumentRef(pk: 5)))
        _ = try await store.apply(alive, to: uuid, at: t0.addingTimeInterval(30), options: .init())
        #expect(try await store.book(uuid)?.nextPollAt == t0.addingTimeInterval(30 + 900))  // webhooks flowing: max/2 at least
        // An urgent poll stays urgent whatever arrives next.
        try await store.requestPoll(uuid, at: t0.addingTimeInterval(40), reason: .operator)
        _ = try await store.apply(alive, to: uuid, at: t0.addingTimeInterval(50), options: .init())
        #expect(try await store.book(uuid)?.nextPollAt == t0.addingTimeInterval(40))
        #expect(try await store.book(uuid)?.pendingPollReason == .operator)
    }

    @Test func tighteningPullsInOnlyFarScheduledPollsOfActiveBooks() async throws {
        let dir = try TemporaryDirectory()
        let store = try SQLiteBookStore(path: dir.file("db.sqlite"), schedule: PollSchedule(minimum: 60, maximum: 1800), random: { 1 })
        let active = uuid
        let urgent = BookUUID("b79fb14b-1d2a-4e8e-8a3c-6f0d2c9e7a41")!
        let done = BookUUID("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")!
        for book in [active, urgent, done] {
            _ = try await store.apply(.command(.track(.created)), to: book, at: t0, options: .init())
            _ = try await store.apply(
                .webhook(WebhookHint(event: .documentUploaded, document: DocumentRef(pk: 5))),
                to: book,
                at: t0,
                options: .init()
            )
        }
        _ = try await store.apply(
            .snapshot(
                .present(
                    pk: 1,
                    status: .verified,
                    documents: [
                        DocumentSnapshot(ref: DocumentRef(pk: 5), status: .completed)
                    ]
                )
            ),
            to: done,
            at: t0,
            options: .init()
        )
        try await store.requestPoll(urgent, at: t0.addingTimeInterval(5), reason: .operator)
        #expect(try await store.book(active)?.nextPollAt == t0.addingTimeInterval(1800))
        let doneBefore = try await store.book(done)?.nextPollAt
        #expect(try await store.tightenPolls(now: t0) == 1)
        let moved = try #require(try await store.book(active)?.nextPollAt)
        #expect(moved >= t0.addingTimeInterval(60) && moved <= t0.addingTimeInterval(120))
        #expect(try await store.book(urgent)?.nextPollAt == t0.addingTimeInterval(5))
        #expect(try await store.book(done)?.nextPollAt == doneBefore)
    }

    @Test func duePollsComeUrgentFirstThenMostOverdue() async throws {
        let dir = try TemporaryDirectory()
        let store = try SQLiteBookStore(path: dir.file("db.sqlite"), random: { 0 })
        let other = BookUUID("b79fb14b-1d2a-4e8e-8a3c-6f0d2c9e7a41")!
        _ = try await store.apply(.command(.track(.webhook)), to: uuid, at: t0, options: .init())  // scheduled at t0 + 60
        _ = try await store.apply(.command(.track(.operator)), to: other, at: t0.addingTimeInterval(30), options: .init())
        let due = try await store.duePolls(now: t0.addingTimeInterval(100), limit: 10)
        #expect(due.map(\.bookUUID) == [other, uuid])
        #expect(due.map(\.reason) == [.operator, nil])
        #expect(try await store.duePolls(now: t0.addingTimeInterval(10), limit: 10).isEmpty)
        try await store.requestPoll(uuid, at: t0.addingTimeInterval(10), reason: .webhookHint)
        #expect(try await store.duePolls(now: t0.addingTimeInterval(10), limit: 10).map(\.reason) == [.webhookHint])
    }
}
