import BookWatchClocks
import BookWatchCore
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Logging
import OcrolusAPI
import Synchronization
import Testing

/// Replicas' limiters drawing from the deployment's one budget in the database (here SQLite, run
/// inline so the virtual clock's driver sees every step; the conformance suite runs the budget's
/// statements on PostgreSQL too).
@Suite struct SharedRateBudgetTests {
    final class Grants: Sendable {
        let log = Mutex<[(replica: Int, priority: RequestPriority, at: TimeInterval)]>([])
        func add(_ replica: Int, _ priority: RequestPriority, _ at: TimeInterval) { log.withLock { $0.append((replica, priority, at)) } }
        var all: [(replica: Int, priority: RequestPriority, at: TimeInterval)] { log.withLock { $0 } }
        var count: Int { log.withLock { $0.count } }
    }

    /// Callers that are done.
    final class Tally: Sendable {
        private let value = Mutex(0)
        func add() { value.withLock { $0 += 1 } }
        var count: Int { value.withLock { $0 } }
    }

    /// A moment some task reached, read by the test.
    final class Moment: Sendable {
        let value = Mutex<TimeInterval?>(nil)
        func set(_ t: TimeInterval) { value.withLock { $0 = t } }
        var at: TimeInterval? { value.withLock { $0 } }
    }

    static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// Three replicas' limiters over one store, each at the organisation's rate.
    func replicas(_ store: SQLiteBookStore, clock: ManualClock, rate: Double = 5, burst: Double = 5) -> [RateLimiter] {
        (0..<3).map { index in
            RateLimiter(
                rate: rate,
                burst: burst,
                clock: clock,
                budget: StoreRateBudget(store: store, owner: "replica-\(index)", logger: Self.quiet, databaseClock: false)
            )
        }
    }

    /// Moves the clock to the next sleeper's deadline whenever every caller is blocked.
    /// False (and an issue recorded) when `done` never came.
    @discardableResult
    func drive(_ clock: ManualClock, until done: () -> Bool, blocked: () -> Bool) async -> Bool {
        var spins = 0
        while !done() && spins < 2_000_000 {
            spins += 1
            await Task.yield()
            if blocked(), let next = clock.nextDeadline { clock.advance(to: next) }
        }
        if !done() { Issue.record("the driver gave up after 2,000,000 turns at \(clock.now())") }
        return done()
    }

    @Test func threeReplicasTogetherKeepTheOrganisationsRateAndUseAllOfIt() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteBookStore(path: directory.file("db.sqlite"), inline: true)
        let clock = ManualClock()
        let start = clock.now()
        let limiters = replicas(store, clock: clock)
        let grants = Grants()
        let callers = 4
        let calls = 25
        let finished = Tally()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (replica, limiter) in limiters.enumerated() {
                for caller in 0..<callers {
                    group.addTask {
                        let priority: RequestPriority = caller == 0 ? .urgent : .background
                        for _ in 0..<calls {
                            try await limiter.acquire(priority)
                            grants.add(replica, priority, clock.now().timeIntervalSince(start))
                        }
                        finished.add()
                    }
                }
            }
            // Time moves only when every caller still asking waits (asleep on the clock or parked
            // in its limiter): "any sleeper" moved it while others were still on their way, and a
            // loaded machine then saw the last grant at 66 s.
            let drove = await drive(clock, until: { grants.count == 3 * callers * calls }) {
                let asking = 3 * callers - finished.count
                return asking > 0 && clock.sleeperCount + limiters.reduce(0) { $0 + $1.parkedCount } == asking
            }
            if !drove { group.cancelAll() }  // the callers left waiting on the clock end, not hang
            try await group.waitForAll()
        }
        let times = grants.all.map(\.at).sorted()
        #expect(times.count == 300)
        for (index, time) in times.enumerated() {
            // A burst of 5 keeps one in reserve: 4 at once.
            #expect(Double(index + 1) <= 5 * time + 4 + 1e-5, "grant \(index + 1) at \(time) s: beyond 5/s + 4 for the three together")
        }
        // All of the budget used: 300 calls after a burst of 5 take 59 s at 5/s.
        let last = try #require(times.last)
        #expect(last <= 59.5, "the last grant at \(last) s")
        // And every replica got a share.
        for replica in 0..<3 { #expect(grants.all.filter { $0.replica == replica }.count == callers * calls) }
        try await store.close()
    }

    @Test func anotherReplicasUrgentCallsGoBeforeThisReplicasBackgroundCalls() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteBookStore(path: directory.file("db.sqlite"), inline: true)
        let clock = ManualClock()
        let limiters = replicas(store, clock: clock, rate: 1, burst: 1)
        try await limiters[0].acquire(.background)  // empties the bucket
        let grants = Grants()
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Replica 1 queues background calls and waits for the next slot.
            for _ in 0..<3 {
                group.addTask {
                    try await limiters[1].acquire(.background)
                    grants.add(1, .background, clock.now().timeIntervalSince1970)
                }
            }
            await drive(clock, until: { clock.sleeperCount == 1 && limiters[1].parkedCount == 2 }, blocked: { false })
            // Then replica 2's urgent calls arrive: its demand stands before the slot opens.
            for _ in 0..<3 {
                group.addTask {
                    try await limiters[2].acquire(.urgent)
                    grants.add(2, .urgent, clock.now().timeIntervalSince1970)
                }
            }
            await drive(clock, until: { clock.sleeperCount == 2 && limiters[2].parkedCount == 2 }, blocked: { false })
            await drive(
                clock,
                until: { grants.count == 6 },
                blocked: { clock.sleeperCount + limiters[1].parkedCount + limiters[2].parkedCount == 6 - grants.count }
            )
            try await group.waitForAll()
        }
        #expect(grants.all.map(\.replica) == [2, 2, 2, 1, 1, 1])
        // One a second all along: yielding wasted no slot.
        let times = grants.all.map(\.at)
        for (earlier, later) in zip(times, times.dropFirst()) { #expect(abs(later - earlier - 1) < 1e-3) }
        try await store.close()
    }

    @Test func a429AnsweredToOneReplicaPausesTheOthers() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteBookStore(path: directory.file("db.sqlite"), inline: true)
        let clock = ManualClock()
        let start = clock.now()
        let limiters = replicas(store, clock: clock)
        await limiters[0].penalize(retryAfter: 10)
        let waited = Moment()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await limiters[1].acquire(.urgent)
                waited.set(clock.now().timeIntervalSince(start))
            }
            await drive(clock, until: { waited.at != nil }, blocked: { clock.sleeperCount == 1 })
            try await group.waitForAll()
        }
        #expect(try #require(waited.at) >= 10)
        try await store.close()
    }

    /// A budget that fails its first `failures` answers, then grants.
    final class FlakyBudget: SharedRateBudget {
        let failures: Int
        let asked = Atomic<Int>(0)
        init(failures: Int) { self.failures = failures }
        struct Down: Error {}
        func take(_ priority: RequestPriority, behind: RequestPriority?, at now: Date, rate: Double, burst: Double) async throws -> TimeInterval? {
            if asked.add(1, ordering: .relaxed).newValue <= failures { throw Down() }
            return nil
        }
        func penalize(at now: Date, retryAfter: TimeInterval?, rate: Double, burst: Double, slowdown: TimeInterval) async throws { throw Down() }
    }

    @Test func aBudgetThatCannotBeReachedIsAskedAgainAndNoCallLeavesWithoutASlot() async throws {
        let clock = ManualClock()
        let start = clock.now()
        let budget = FlakyBudget(failures: 3)
        let limiter = RateLimiter(rate: 5, burst: 5, clock: clock, budget: budget, budgetRetry: 2)
        let granted = Moment()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await limiter.acquire(.urgent)
                granted.set(clock.now().timeIntervalSince(start))
            }
            await drive(clock, until: { granted.at != nil }, blocked: { clock.sleeperCount == 1 })
            try await group.waitForAll()
        }
        #expect(granted.at == 6)
        #expect(limiter.budgetFailureCount == 3)
        // A 429 it cannot share still pauses this process.
        await limiter.penalize(retryAfter: 30)
        #expect(limiter.budgetFailureCount == 4)
    }

    @Test func aCancelledWaiterLeavesAndTheNextOneAsks() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteBookStore(path: directory.file("db.sqlite"), inline: true)
        let clock = ManualClock()
        let limiter = replicas(store, clock: clock, rate: 1, burst: 1)[0]
        try await limiter.acquire(.background)
        let first = Task { try await limiter.acquire(.urgent) }
        await drive(clock, until: { clock.sleeperCount == 1 }, blocked: { false })
        let second = Task { try await limiter.acquire(.background) }
        await drive(clock, until: { limiter.parkedCount == 1 }, blocked: { false })
        first.cancel()
        await #expect(throws: CancellationError.self) { try await first.value }
        await drive(clock, until: { limiter.waiting[.background] == 0 }, blocked: { clock.sleeperCount == 1 })
        _ = try await second.value
        #expect(limiter.grantedCount == 2)
        try await store.close()
    }
}
