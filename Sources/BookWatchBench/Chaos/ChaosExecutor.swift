import Dispatch
import Foundation
import Synchronization

/// One thread that runs every job of the seed given to it: the scheduler's task, the replicas'
/// chains, the simulator's and the token provider's actor turns (a task with this executor as
/// its preference runs its nonisolated code and default actors' code here).
///
/// Why: on the shared pool each step hopped threads several times (the scheduler wakes a chain
/// on another thread, then waits for it to block), about a quarter of a search's CPU went to
/// the kernel's wake-ups, and two seeds side by side contended for both cores. On one thread per
/// seed, a chain woken by the scheduler runs when the scheduler yields, and `--jobs 2` keeps two
/// threads busy without touching each other.
///
/// An unstructured `Task {}` does not inherit the preference: such a task runs on the shared
/// pool, which is correct (the kernel counts what it waits for) but slower.
/// Once `shutdown` is called, jobs still arriving (a task resumed after its seed ended) run on
/// the shared pool.
final class ChaosExecutor: TaskExecutor {
    private struct State {
        var jobs: [UnownedJob] = []
        var sleeping = false
        var stopped = false
    }

    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    func enqueue(_ job: UnownedJob) {
        let (queued, signal) = state.withLock { state -> (Bool, Bool) in
            if state.stopped { return (false, false) }
            state.jobs.append(job)
            defer { state.sleeping = false }
            return (true, state.sleeping)
        }
        if signal { wake.signal() }
        if !queued { DispatchQueue.global().async { job.runSynchronously(on: self.asUnownedTaskExecutor()) } }
    }

    /// Ends the thread once its queue is empty; later jobs run on the shared pool.
    func shutdown() {
        let signal = state.withLock { state -> Bool in
            state.stopped = true
            defer { state.sleeping = false }
            return state.sleeping
        }
        if signal { wake.signal() }
    }

    private func loop() {
        // The queue and the batch trade buffers: neither is reallocated once grown.
        var batch: [UnownedJob] = []
        while true {
            batch.removeAll(keepingCapacity: true)
            let ended = state.withLock { state -> Bool in
                if state.jobs.isEmpty {
                    if state.stopped { return true }
                    state.sleeping = true
                    return false
                }
                swap(&state.jobs, &batch)
                return false
            }
            if ended { return }
            if batch.isEmpty {
                wake.wait()
                continue
            }
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
