import BookWatchClocks
import BookWatchCore
import BookWatchSQLite
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Testing

@testable import BookWatchService

/// While webhooks are silent, Books still processing are polled as often as the deployment's
/// request rate allows (`PollSchedule.silentInterval`), from the moment the silence is noticed.
@Suite struct SilentPollingTests {
    static let uuid = AdversaryTests.uuid

    /// A store in a temporary directory (removed when the setup goes), a manual clock and a
    /// watcher with `rate` answering every status call with `status`; every draw is 0.99.
    final class Setup {
        let directory: String
        let store: SQLiteBookStore
        let clock = ManualClock(start: Date(timeIntervalSince1970: 1_774_015_331))
        let watcher: Watcher

        init(rate: Double?, detectOutages: Bool = true, status: BookSnapshot = AdversaryTests.verifying) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-silent-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            store = try SQLiteBookStore(path: directory + "/db.sqlite", busyTimeout: 1, random: { 0.99 })
            var configuration = WatcherConfiguration()
            configuration.requestRate = rate
            configuration.detectOutages = detectOutages
            watcher = Watcher(
                store: store,
                client: AdversaryTests.API(clock: clock, status: [.snapshot(status)]),
                clock: clock,
                configuration: configuration,
                health: ServiceHealth(startedAt: clock.now()),
                logger: quietLogger,
                random: { 0.99 }
            )
        }

        deinit {
            try? store.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// One Book processing, its poll set far out while webhooks were trusted; webhooks then go
    /// silent for an hour. Answers when its poll came due after the tightening, and after one
    /// answer while silent (seconds from then). Every draw is 0.99.
    func silentPolls(rate: Double?, detectOutages: Bool = true) async throws -> (tightened: TimeInterval, next: TimeInterval) {
        let setup = try Setup(rate: rate, detectOutages: detectOutages)
        let (store, clock, watcher) = (setup.store, setup.clock, setup.watcher)
        _ = try await store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        _ = try await store.apply(.snapshot(AdversaryTests.verifying), to: Self.uuid, at: clock.now(), options: .init())
        try await store.deferPoll(Self.uuid, until: clock.now().addingTimeInterval(10 * 3600), keepUrgent: false)
        clock.advance(by: 3700)
        let silentAt = clock.now()
        #expect(await watcher.refreshSilence())
        let tightened = try #require(try await store.book(Self.uuid)?.nextPollAt)
        clock.advance(to: tightened)
        #expect(try await watcher.pollDue() == 1)
        let next = try #require(try await store.book(Self.uuid)?.nextPollAt)
        return (tightened.timeIntervalSince(silentAt), next.timeIntervalSince(clock.now()))
    }

    @Test(arguments: [true, false])
    func aBookIsPolledAtTheIntervalItsShareOfTheRateAllows(detectOutages: Bool) async throws {
        // One Book with 0.0125 requests/s: 1 / (0.95 × 0.8 × 0.0125), about 105 s between polls,
        // whether or not outages are detected (the count of Books processing is read either way).
        let interval = PollSchedule().silentInterval(processing: 1, rate: 0.0125)
        #expect(interval > 105 && interval < 106)
        let (tightened, next) = try await silentPolls(rate: 0.0125, detectOutages: detectOutages)
        #expect(tightened >= 0.98 * interval && tightened < interval)  // the one moved poll, at 0.99 of the interval
        #expect(abs(next - 0.901 * interval) < 0.002)  // the interval less a tenth of it at 0.99
    }

    @Test func aCountOfBooksProcessingOlderThanTwoMinutesIsNotUsed() async throws {
        let setup = try Setup(rate: 0.0005)
        let (store, clock, watcher) = (setup.store, setup.clock, setup.watcher)
        _ = try await store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        // One finished Book with a retention poll: at this rate its interval is far over the maximum.
        try await StoreFixtures.retrieved(in: store, book: BookUUID("0b1c2d3e-0000-4000-8000-000000000042")!, pk: 42, at: clock.now())
        #expect(watcher.silentInterval() == nil, "no count read yet")
        await watcher.sampleArrivals(now: clock.now())
        #expect(watcher.silentInterval() == PollSchedule().silentInterval(processing: 1, rate: 0.0005))
        clock.advance(by: 121)  // no reading since (they failed, or the loops were held up)
        #expect(watcher.silentInterval() == nil)
        // The finished Books' count changes slowly: kept, so a tightening never falls back to the maximum.
        let finished = PollSchedule().finishedInterval(finished: 1, rate: 0.0005)
        #expect(finished > 20_000 && watcher.finishedInterval() == finished)
        await watcher.sampleArrivals(now: clock.now())
        #expect(watcher.silentInterval() != nil)
    }

    /// A finished Book's retention polls take their share of the rate with the other finished
    /// Books: here one Book and 0.0005 requests/s, so its polls are about 21,000 s apart, not the
    /// maximum's 1,800, when a long silence pulls them in and after its answer.
    @Test func aFinishedBooksPollsAreSpacedByTheFinishedBooksShareOfTheRate() async throws {
        let finished = BookSnapshot.present(pk: 1, status: .verified, documents: [DocumentSnapshot(ref: DocumentRef(pk: 1), status: .completed)])
        let setup = try Setup(rate: 0.0005, status: finished)
        let (store, clock, watcher) = (setup.store, setup.clock, setup.watcher)
        try await StoreFixtures.retrieved(in: store, book: Self.uuid, at: clock.now())
        try await store.deferPoll(Self.uuid, until: clock.now().addingTimeInterval(100 * 3600), keepUrgent: false)
        clock.advance(by: 3700)
        let silentAt = clock.now()
        #expect(await watcher.refreshSilence())
        let interval = PollSchedule().finishedInterval(finished: 1, rate: 0.0005)
        #expect(interval > 21_000 && interval < 21_100)
        let tightened = try #require(try await store.book(Self.uuid)?.nextPollAt).timeIntervalSince(silentAt)
        #expect(tightened >= 0.98 * interval && tightened < interval, "pulled in to within the finished interval, not the maximum")
        clock.advance(by: tightened)
        #expect(try await watcher.pollDue() == 1)
        #expect(try await store.book(Self.uuid)?.machine.phase == .complete)
        let next = try #require(try await store.book(Self.uuid)?.nextPollAt).timeIntervalSince(clock.now())
        #expect(abs(next - 0.901 * interval) < 0.01, "the interval less a tenth of it at 0.99")
    }

    /// A Book tracked from outside the watcher (`track --new` from the CLI: default options, as
    /// if webhooks would announce its documents) while webhooks are silent: within one sampling
    /// period its first poll comes within the silent interval, not a quarter of the maximum away.
    /// While webhooks are trusted it stays.
    @Test(arguments: [true, false])
    func aBookTrackedFromOutsideWhileSilentIsPolledAtTheSilentInterval(silent: Bool) async throws {
        let setup = try Setup(rate: 0.0125)
        let (store, clock, watcher) = (setup.store, setup.clock, setup.watcher)
        let other = BookUUID("0b1c2d3e-0000-4000-8000-000000000043")!
        _ = try await store.apply(.command(.track(.created)), to: Self.uuid, at: clock.now(), options: .init())
        _ = try await store.apply(.snapshot(AdversaryTests.verifying), to: Self.uuid, at: clock.now(), options: .init())
        if silent {
            clock.advance(by: 3700)
        } else {
            // Trusted: the deployment's estimate has seen twenty documents announced, none missed.
            var reliable = WebhookLossEstimate()
            _ = reliable.observe(announced: 20, missed: 0)
            #expect(!reliable.isLossy)
            let text = try #require(String(data: try JSONEncoder().encode(reliable), encoding: .utf8))
            _ = try await store.updateSharedState(Watcher.lossKey, at: clock.now()) { _ in text }
        }
        #expect(await watcher.refreshSilence() == silent)
        #expect(watcher.options().webhooksTrusted == !silent)
        _ = try await store.apply(.command(.track(.created)), to: other, at: clock.now(), options: .init())
        let first = try #require(try await store.book(other)?.nextPollAt).timeIntervalSince(clock.now())
        #expect(first > 400, "a quarter of the maximum at 0.99: \(first)")
        clock.advance(by: WebhookArrivals.sampleEvery)
        #expect(await watcher.refreshSilence() == silent)
        let next = try #require(try await store.book(other)?.nextPollAt).timeIntervalSince(clock.now())
        if silent {
            let interval = try #require(watcher.silentInterval())
            #expect(next < interval && next < 400, "pulled in to the silent interval (\(interval) s): \(next)")
        } else {
            #expect(next == first - WebhookArrivals.sampleEvery)
        }
    }

    @Test func withoutAKnownRateTheBookIsPolledWithinTwiceTheMinimum() async throws {
        let (tightened, next) = try await silentPolls(rate: nil)
        #expect(tightened >= 118 && tightened < 120)
        #expect(abs(next - 119.4) < 0.002)  // full jitter from 60 s to 120 s at 0.99
    }
}
