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
