import BookWatchClocks
import Foundation
import Synchronization
import Testing

@testable import OcrolusAPI

/// Drives tasks that wait on a `ManualClock` until `done()` holds, jumping time to the next deadline
/// whenever nothing else can move. Bounded, so a bug fails the test instead of hanging it.
func runVirtually(_ clock: ManualClock, until done: () -> Bool, maxSteps: Int = 2_000_000) async {
    var steps = 0
    while !done() && steps < maxSteps {
        steps += 1
        await Task.yield()
        if steps % 8 == 0, let next = clock.nextDeadline { clock.advance(to: next) }
    }
}

@Suite struct RateLimiterTests {
    @Test func neverExceedsRateTimesElapsedPlusBurstWithManyConcurrentCallers() async throws {
        let clock = ManualClock()
        let start = clock.now()
        let limiter = RateLimiter(rate: 5, burst: 25, clock: clock)
        let grants = Recorder<TimeInterval>()
        let callers = 40
        let callsEach = 25
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    for _ in 0..<callsEach {
                        try await limiter.acquire(caller % 3 == 0 ? .urgent : .background)
                        let at = clock.now().timeIntervalSince(start)
                        grants.append(at)
                    }
                }
            }
            await runVirtually(clock, until: { grants.count == callers * callsEach })
            try await group.waitForAll()
        }
        let times = grants.values.sorted()
        #expect(times.count == 1000)
        for (index, time) in times.enumerated() {
            // Dates hold about 0.1 µs here, so allow a hundred-thousandth of a token.
            // Burst 25 keeps one in reserve: 24 at once.
            #expect(Double(index + 1) <= 5 * time + 24 + 1e-5, "grant \(index + 1) at \(time) s")
        }
        // And it is not needlessly slow: 1000 calls at 5/s after a burst of 25 take about 195 s.
        #expect(try #require(times.last) <= 196)
        print("rate limiter: \(times.count) grants over \(times.last ?? 0) virtual seconds (bound 5/s + 25)")
    }

    /// The chaos kernel reads the counts of blocked tasks consistently only if each component
    /// tells it after every change: the clock of its sleepers, the limiter of its parked waiters.
    @Test func theClockAndTheLimiterTellEveryChangeOfTheirCounts() async throws {
        let sleepers = Recorder<Int>()
        let clockBox = Mutex<ManualClock?>(nil)
        let clock = ManualClock(onSleepersChange: { sleepers.append(clockBox.withLock { $0 }?.sleeperCount ?? -1) })
        clockBox.withLock { $0 = clock }
        let parked = Recorder<Int>()
        let limiterBox = Mutex<RateLimiter?>(nil)
        let limiter = RateLimiter(rate: 1, burst: 2, clock: clock, onParkedChange: { parked.append(limiterBox.withLock { $0 }?.parkedCount ?? -1) })
        limiterBox.withLock { $0 = limiter }
        let granted = Recorder<Int>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<3 {
                group.addTask {
                    try await limiter.acquire(.background)
                    granted.append(caller)
                }
            }
            // Time stands still: one is granted, the head sleeps on the clock, the third parks.
            while limiter.parkedCount < 1 || clock.sleeperCount < 1 { await Task.yield() }
            #expect(parked.values.contains(1), "the park was told: \(parked.values)")
            await runVirtually(clock, until: { granted.count == 3 })
            try await group.waitForAll()
        }
        // The parked waiter was handed on, told as it happened.
        #expect(parked.values.last == 0, "the last hand-off was told: \(parked.values)")
        // The head slept on the clock and was woken, both told.
        #expect(sleepers.values.contains { $0 >= 1 }, "a sleep was told: \(sleepers.values)")
        #expect(sleepers.values.last == 0, "the wake-up was told: \(sleepers.values)")
        // A cancelled sleeper is told too.
        let before = sleepers.count
        let sleeper = Task { try await clock.sleep(until: clock.now().addingTimeInterval(60)) }
        while clock.sleeperCount == 0 { await Task.yield() }
        sleeper.cancel()
        _ = await sleeper.result
        #expect(sleepers.values.dropFirst(before) == [1, 0])
    }

    @Test func aBudgetCallThatDoesNotReturnNeverHoldsACancelledCaller() async throws {
        let (stream, feed) = AsyncStream<Int>.makeStream()
        let started = Recorder<Int>()
        let caller = Task {
            try await RateLimiter.leavingOnCancel {
                started.append(1)
                for await _ in stream {}
                return 1
            }
        }
        while started.count == 0 { await Task.yield() }
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
        feed.finish()  // the call ends on its own afterwards
        #expect(try await RateLimiter.leavingOnCancel { 7 } == 7)
    }

    @Test func retrievalsOvertakeUrgentCallsWhichOvertakeBackgroundCallsFIFOWithinEach() async throws {
        let clock = ManualClock()
        let limiter = RateLimiter(rate: 1, burst: 1, clock: clock)
        try await limiter.acquire(.background)  // empties the bucket
        let order = Recorder<String>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            func enqueue(_ name: String, _ priority: RequestPriority) async {
                let before = limiter.waiting[priority] ?? 0
                group.addTask {
                    try await limiter.acquire(priority)
                    order.append(name)
                }
                while (limiter.waiting[priority] ?? 0) == before { await Task.yield() }
            }
            await enqueue("b1", .background)
            await enqueue("b2", .background)
            await enqueue("b3", .background)
            await enqueue("u1", .urgent)
            await enqueue("u2", .urgent)
            await enqueue("r1", .retrieval)
            await runVirtually(clock, until: { order.count == 6 })
            try await group.waitForAll()
        }
        #expect(order.values == ["r1", "u1", "u2", "b1", "b2", "b3"])
    }

    @Test func a429PausesForItsRetryAfterThenHalvesTheRate() async throws {
        let clock = ManualClock()
        let start = clock.now()
        let limiter = RateLimiter(rate: 10, burst: 1, slowdownPeriod: 60, clock: clock)
        await limiter.penalize(retryAfter: 10)
        let grants = Recorder<TimeInterval>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for _ in 0..<3 {
                    try await limiter.acquire(.urgent)
                    grants.append(clock.now().timeIntervalSince(start))
                }
            }
            await runVirtually(clock, until: { grants.count == 3 })
            try await group.waitForAll()
        }
        let times = grants.values
        #expect(times[0] >= 10)
        // Half of 10/s: 0.2 s between grants while slowed down.
        #expect(abs((times[2] - times[1]) - 0.2) < 1e-6)
    }

    @Test func cancellingAWaiterLetsTheNextOneThrough() async throws {
        let clock = ManualClock()
        let limiter = RateLimiter(rate: 1, burst: 1, clock: clock)
        try await limiter.acquire(.urgent)
        let first = Task { try await limiter.acquire(.urgent) }
        while (limiter.waiting[.urgent] ?? 0) < 1 { await Task.yield() }
        let second = Task { try await limiter.acquire(.urgent) }
        while (limiter.waiting[.urgent] ?? 0) < 2 { await Task.yield() }
        first.cancel()
        await #expect(throws: CancellationError.self) { try await first.value }
        let done = Recorder<Bool>()
        let waiter = Task {
            _ = try await second.value
            done.append(true)
        }
        await runVirtually(clock, until: { done.count == 1 })
        try await waiter.value
        #expect(limiter.grantedCount == 2)
        #expect(limiter.waiting[.urgent] == 0)
    }
}

/// A thread-safe append-only log for tests.
final class Recorder<T: Sendable>: Sendable {
    private let state = Mutex<[T]>([])
    func append(_ value: T) { state.withLock { $0.append(value) } }
    var values: [T] { state.withLock { $0 } }
    var count: Int { state.withLock { $0.count } }
}
