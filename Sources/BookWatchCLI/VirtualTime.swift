import Foundation
import OcrolusAPI
import Synchronization

/// Runs work on a `ManualClock` as if time passed: whenever every task is waiting on the clock
/// (the rate limiter, a backoff), time jumps to the earliest deadline. Hours of scenario in
/// seconds, deterministically (end-to-end tests, `bench strategies`).
public enum VirtualTime {
    public static func drive(_ clock: ManualClock, _ step: @escaping @Sendable () async throws -> Void) async throws {
        let done = Atomic<Bool>(false)
        let task = Task {
            defer { done.store(true, ordering: .releasing) }
            try await step()
        }
        var spins = 0
        while !done.load(ordering: .acquiring) {
            await Task.yield()
            spins += 1
            if spins % 16 == 0, let next = clock.nextDeadline { clock.advance(to: next) }
        }
        try await task.value
    }
}
