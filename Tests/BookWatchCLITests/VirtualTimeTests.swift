import BookWatchClocks
import Foundation
import OcrolusAPI
import Synchronization
import Testing

@testable import BookWatchBench

/// The virtual clock's wake-ups: a sleeper that `advance` woke counts as pending until its task
/// has run, and `VirtualTime.drive` does not move time again before it has (the strategy bench's
/// 429s: a rate limiter's grant woken at its slot reached the simulator a jump later).
@Suite struct VirtualTimeTests {
    @Test func aWokenSleeperIsPendingUntilItsTaskRuns() async throws {
        let clock = ManualClock()
        let executor = HeldExecutor()
        let deadline = clock.now().addingTimeInterval(1)
        let sleeper = Task(executorPreference: executor) {
            try await clock.sleep(until: deadline)
            return clock.now()
        }
        while clock.sleeperCount == 0 { executor.runAll() }
        #expect(clock.pendingWakeups == 0)
        clock.advance(to: deadline)
        #expect(clock.sleeperCount == 0)
        #expect(clock.pendingWakeups == 1, "woken, but its task has not run: the held executor has its job")
        executor.runAll()
        #expect(try await sleeper.value == deadline)
        #expect(clock.pendingWakeups == 0)
    }

    /// A ticker keeps a deadline pending every quarter second; the sleeper woken at `deadline`
    /// runs only when its executor is released, long after the driver could have jumped past it.
    @Test func driveWaitsForTheSleepersItWoke() async throws {
        let clock = ManualClock()
        let executor = HeldExecutor()
        let start = clock.now()
        let deadline = start.addingTimeInterval(1)
        let sleeper = Task(executorPreference: executor) {
            try await clock.sleep(until: deadline)
            return clock.now()
        }
        while clock.sleeperCount == 0 { executor.runAll() }
        let released = Atomic<Bool>(false)
        let releaser = Task {
            // Released only after the driver has had many chances to move time on, or has moved
            // it past the wake-up (which only a driver that does not wait can do).
            for _ in 0..<2000 where clock.now() <= deadline { await Task.yield() }
            while !released.load(ordering: .acquiring) {
                executor.runAll()
                await Task.yield()
            }
        }
        try await VirtualTime.drive(clock) {
            while clock.now() < start.addingTimeInterval(3) { try await clock.sleep(for: 0.25) }
        }
        released.store(true, ordering: .releasing)
        await releaser.value
        executor.runAll()  // without the wait, the wake-up may still be queued here
        #expect(try await sleeper.value == deadline, "the sleeper saw the time it was woken at")
    }

    /// A waiter parked behind the head is resumed by the head's grant, not by the clock: it counts
    /// as a hand-off until it has run (else a driver would jump time before it takes its turn).
    @Test func aParkedWaiterHandedTheTurnCountsUntilItRuns() async throws {
        let clock = ManualClock()
        let limiter = RateLimiter(rate: 1, burst: 1, clock: clock)
        try await limiter.acquire(.background)  // the bucket is empty now
        let executor = HeldExecutor()
        let head = Task(executorPreference: executor) { try await limiter.acquire(.background) }
        let next = Task(executorPreference: executor) { try await limiter.acquire(.background) }
        while clock.sleeperCount == 0 || limiter.parkedCount == 0 { executor.runAll() }
        #expect(limiter.handoffsInFlight == 0)
        clock.advance(by: 1)
        executor.runOne()  // the head wakes, is granted, and hands the turn to the parked waiter
        _ = try await head.value
        #expect(limiter.parkedCount == 0)
        #expect(limiter.handoffsInFlight == 1, "resumed, but its task has not run")
        while clock.sleeperCount == 0 { executor.runAll() }  // it runs, and sleeps until its slot
        #expect(limiter.handoffsInFlight == 0)
        clock.advance(by: 1)
        executor.runAll()
        _ = try await next.value
        #expect(limiter.grantedCount == 3)
    }

    /// Real time as the tests of the stall limit see it: it passes only when a test says so.
    final class RealTime: Sendable {
        let origin = SuspendingClock.now
        let elapsed = Atomic<Int>(0)  // milliseconds
        func pass(_ milliseconds: Int) { elapsed.add(milliseconds, ordering: .relaxed) }
        var now: SuspendingClock.Instant { origin + .milliseconds(elapsed.load(ordering: .relaxed)) }
    }

    @Test func aStepThatStopsTimeForTheStallLimitIsCancelledAndSaysWhy() async throws {
        let clock = ManualClock()
        let real = RealTime()
        do {
            // Busy for ever (a transaction that never ends): time cannot move, the step cannot
            // finish, and half a second of real time passes.
            let stuck: @Sendable () -> Bool = { true }
            let now: @Sendable () -> SuspendingClock.Instant = { real.now }
            try await VirtualTime.drive(clock, busy: stuck, stallLimit: .milliseconds(400), stallPasses: 100, realTime: now) {
                real.pass(500)
                try await clock.sleep(for: 1)
            }
            Issue.record("the driver returned")
        } catch let stalled as VirtualTime.Stalled {
            #expect(stalled.busy && stalled.at == clock.now())
            #expect(stalled.ended, "the manual clock's sleep ends on cancellation")
            #expect(stalled.description.contains("stalled") && stalled.description.contains("busy true"))
        }
    }

    @Test func aProcessStoppedLongerThanTheLimitIsNotAStallWhenTimeMovesAfter() async throws {
        let clock = ManualClock()
        let start = clock.now()
        let real = RealTime()
        let now: @Sendable () -> SuspendingClock.Instant = { real.now }
        // Twelve minutes pass between two passes of the driver (the process was stopped); then the
        // step sleeps and time moves within a few passes, far fewer than the 1,000 a stall needs.
        try await VirtualTime.drive(clock, stallLimit: .seconds(600), stallPasses: 1000, realTime: now) {
            real.pass(720_000)
            try await clock.sleep(for: 5)
        }
        #expect(clock.now() == start.addingTimeInterval(5))
    }

    @Test func aStepWhoseTimeKeepsMovingIsNotStoppedHoweverLongItRuns() async throws {
        let clock = ManualClock()
        let start = clock.now()
        let real = RealTime()
        // Ten rounds of 300 ms of real work, each followed by a jump: 3 s in all, far longer than
        // the limit, but never 400 ms without time moving. The limit counts the gaps, not the run.
        let now: @Sendable () -> SuspendingClock.Instant = { real.now }
        try await VirtualTime.drive(clock, stallLimit: .milliseconds(400), stallPasses: 1, realTime: now) {
            for _ in 0..<10 {
                real.pass(300)
                try await clock.sleep(for: 5)
            }
        }
        #expect(clock.now() == start.addingTimeInterval(50))
        #expect(real.elapsed.load(ordering: .relaxed) == 3000)
    }
}

/// A task executor that runs its jobs only when told to (`runAll`): a task preferring it is held
/// between its wake-up and its next step for as long as the test wants.
private final class HeldExecutor: TaskExecutor {
    private let jobs = Mutex<[UnownedJob]>([])

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
    }

    /// Runs the oldest queued job, if any.
    func runOne() {
        let next = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        next?.runSynchronously(on: asUnownedTaskExecutor())
    }

    /// Runs every job queued now (and those they queue).
    func runAll() {
        while true {
            let next = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            guard let next else { return }
            next.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
