import BookWatchClocks
import Foundation
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
            // Released only after the driver has had many chances to move time on.
            for _ in 0..<2000 { await Task.yield() }
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
}

/// A task executor that runs its jobs only when told to (`runAll`): a task preferring it is held
/// between its wake-up and its next step for as long as the test wants.
private final class HeldExecutor: TaskExecutor {
    private let jobs = Mutex<[UnownedJob]>([])

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
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
