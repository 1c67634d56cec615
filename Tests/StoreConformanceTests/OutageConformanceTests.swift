import BookWatchCore
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Testing

/// What outage detection reads and moves, in every store: the Books still processing are
/// counted, and on a suspected outage only their polls are pulled in.
@Suite struct OutageConformanceTests {
    static let processing = BookUUID("0b1c2d3e-0000-4000-8000-000000000001")!
    static let complete = BookUUID("0b1c2d3e-0000-4000-8000-000000000002")!
    static let untracked = BookUUID("0b1c2d3e-0000-4000-8000-000000000003")!

    @Test(arguments: StoreKind.available)
    func aSuspectedOutagePullsInOnlyTheProcessingBooksPolls(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let t = F.t0
            _ = try await store.apply(.command(.track(.operator)), to: Self.processing, at: t, options: .init())
            try await StoreFixtures.retrieved(in: store, book: Self.complete, pk: 2, at: t)
            _ = try await store.apply(.command(.track(.operator)), to: Self.untracked, at: t, options: .init())
            _ = try await store.apply(.command(.untrack), to: Self.untracked, at: t, options: .init())
            #expect(try await store.polledCounts() == PolledBooks(processing: 1, finished: 1))
            let far = t.plus(10 * 3600)
            for uuid in [Self.processing, Self.complete] { try await store.deferPoll(uuid, until: far, keepUrgent: false) }

            let now = t.plus(60)
            #expect(try await store.tightenPolls(now: now, includingFinished: false) == 1)
            let moved = try #require(try await store.book(Self.processing)?.nextPollAt)
            #expect(moved >= now && moved < now.plus(120))  // within twice the minimum
            #expect(try await store.book(Self.complete)?.nextPollAt == far)
            // The hour-long silence pulls in the finished Book's too.
            #expect(try await store.tightenPolls(now: now, includingFinished: true) == 1)
            let retention = try #require(try await store.book(Self.complete)?.nextPollAt)
            #expect(retention <= now.plus(1800))
        }
    }

    /// The `tracking` scope moves only Books no status answer has shown yet.
    @Test(arguments: StoreKind.available)
    func theTrackingScopePullsInOnlyBooksNotYetSeen(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let t = F.t0
            let tracking = BookUUID("0b1c2d3e-0000-4000-8000-000000000004")!
            let backingOff = BookUUID("0b1c2d3e-0000-4000-8000-000000000005")!
            let doubted = BookUUID("0b1c2d3e-0000-4000-8000-000000000007")!
            let refused = BookUUID("0b1c2d3e-0000-4000-8000-000000000008")!
            for uuid in [tracking, backingOff, doubted, refused] {
                _ = try await store.apply(.command(.track(.created)), to: uuid, at: t, options: .init())
            }
            // Its first poll failed: the backoff stands.
            try await store.deferPoll(backingOff, until: t.plus(600), keepUrgent: false)
            // A first "gone" answer: polled, a doubt, and its second look scheduled (an answer
            // showing the Book moves it to processing).
            _ = try await store.apply(.snapshot(.gone), to: doubted, at: t, options: .init())
            // A refused poll: a doubt, not polled (no snapshot), no failure counted: only
            // `doubt_kind IS NULL` keeps its second look where it is.
            _ = try await store.apply(.pollRefused("403 code 2102"), to: refused, at: t, options: .init())
            let untouched = [try #require(try await store.book(doubted)), try #require(try await store.book(refused))]
            #expect(untouched.map(\.machine.phase) == [.tracking, .tracking])
            #expect(untouched.map { $0.machine.doubt?.kind } == [.gone, .refused])
            _ = try await store.apply(.command(.track(.operator)), to: Self.processing, at: t, options: .init())
            _ = try await store.apply(.snapshot(F.verifying), to: Self.processing, at: t, options: .init())
            try await StoreFixtures.retrieved(in: store, book: Self.complete, pk: 2, at: t)
            let processingPoll = try await store.book(Self.processing)?.nextPollAt
            let completePoll = try await store.book(Self.complete)?.nextPollAt
            let first = try #require(try await store.book(tracking)?.nextPollAt)
            #expect(first >= t.plus(60), "a first poll at the minimum at least")
            let now = t.plus(1)
            #expect(try await store.tightenPolls(now: now, scope: .tracking, silentInterval: 20, finishedInterval: nil) == 1)
            let moved = try #require(try await store.book(tracking)?.nextPollAt)
            #expect(moved >= now && moved < now.plus(20))
            #expect(try await store.book(backingOff)?.nextPollAt == t.plus(600))
            #expect(try await store.book(Self.processing)?.nextPollAt == processingPoll)
            #expect(try await store.book(Self.complete)?.nextPollAt == completePoll)
            for book in untouched {
                #expect(book.nextPollAt.map { $0 > now.plus(20) } == true, "\(book.uuid): a poll the scope would have moved")
                #expect(try await store.book(book.uuid)?.nextPollAt == book.nextPollAt, "\(book.uuid) left alone")
            }
            #expect(
                try await store.tightenPolls(now: now, scope: .tracking, silentInterval: 20, finishedInterval: nil) == 0,
                "nothing left beyond the spread"
            )
        }
    }

    @Test(arguments: StoreKind.available)
    func tightenedPollsAreSpacedOverTheSilentIntervalTheBookHeardFromLongestAgoFirst(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let t = F.t0
            // In descending uuid order: the ties' order (uuid) is the opposite of the staleness order.
            let books = (1...3).reversed().map { BookUUID("0b1c2d3e-0000-4000-8000-00000000001\($0)")! }
            // Tracked 10 s apart, the last of `books` first; with no poll and no webhook, tracking is
            // the last news of a Book. The one tracked first then has a status answer, and the
            // second a webhook: each is then newer news than the third's tracking.
            for (offset, uuid) in books.reversed().enumerated() {
                _ = try await store.apply(.command(.track(.operator)), to: uuid, at: t.plus(Double(offset) * 10), options: .init())
            }
            _ = try await store.apply(.snapshot(F.verifying), to: books[2], at: t.plus(60), options: .init())
            _ = try await store.apply(F.uploaded(5), to: books[1], at: t.plus(50), options: .init())
            for uuid in books { try await store.deferPoll(uuid, until: t.plus(10 * 3600), keepUrgent: false) }
            let now = t.plus(100)
            #expect(try await store.tightenPolls(now: now, includingFinished: false, silentInterval: 90, finishedInterval: nil) == 3)
            var due: [Date] = []
            for uuid in books { due.append(try #require(try await store.book(uuid)?.nextPollAt)) }
            // Three slots of 30 s, the Book heard from longest ago first: tracked at 20 s, webhook
            // at 50 s, status answer at 60 s.
            #expect(due[0] >= now && due[0] < now.plus(30))
            #expect(due[1] >= now.plus(30) && due[1] < now.plus(60))
            #expect(due[2] >= now.plus(60) && due[2] < now.plus(90))
        }
    }

    /// Finished Books with a retention poll are counted (those without one, and untracked ones,
    /// are not), and a tightening spreads their polls over the finished Books' interval when the
    /// budget needs it longer than the maximum.
    @Test(arguments: StoreKind.available)
    func finishedBooksPollsAreCountedAndTightenedOverTheirInterval(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let t = F.t0
            let finished = (1...4).map { BookUUID("0b1c2d3e-0000-4000-8000-00000000002\($0)")! }
            for (offset, uuid) in finished.enumerated() { try await StoreFixtures.retrieved(in: store, book: uuid, pk: 20 + offset, at: t) }
            _ = try await store.apply(.command(.untrack), to: finished[3], at: t, options: .init())
            #expect(try await store.polledCounts() == PolledBooks(processing: 0, finished: 3))
            // A Book finished longer than the retention window (a week) has no poll left and is not counted.
            _ = try await store.apply(StoreFixtures.finished(pk: 22), to: finished[2], at: t.plus(8 * 86400), options: .init())
            #expect(try await store.book(finished[2])?.nextPollAt == nil)
            #expect(try await store.polledCounts() == PolledBooks(processing: 0, finished: 2))

            let far = t.plus(100 * 3600)
            for uuid in finished.prefix(2) { try await store.deferPoll(uuid, until: far, keepUrgent: false) }
            let now = t.plus(60)
            // An interval of 4 hours: both move, into two slots of 2 hours (not within the maximum).
            #expect(try await store.tightenPolls(now: now, includingFinished: true, silentInterval: nil, finishedInterval: 4 * 3600) == 2)
            var due: [Date] = []
            for uuid in finished.prefix(2) { due.append(try #require(try await store.book(uuid)?.nextPollAt)) }
            #expect(due.allSatisfy { $0 >= now && $0 < now.plus(4 * 3600) })
            #expect(due.contains { $0 >= now.plus(2 * 3600) })
            // Already within the interval: nothing moves again.
            #expect(try await store.tightenPolls(now: now, includingFinished: true, silentInterval: nil, finishedInterval: 4 * 3600) == 0)
        }
    }
}
