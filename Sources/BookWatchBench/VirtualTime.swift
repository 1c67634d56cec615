import BookWatchClocks
import Foundation
import OcrolusAPI
import Synchronization

/// Runs work on a `ManualClock` as if time passed: whenever every task is waiting on the clock
/// (the rate limiter, a backoff), time jumps to the earliest deadline. Hours of scenario in
/// seconds, deterministically (end-to-end tests, `bench strategies`).
public enum VirtualTime {
    ///
    /// `busy` says whether work the driver cannot see is running (a store transaction on the
    /// database's own threads): time stands still until it has been false for a run of yields,
    /// so a perpetual sleeper (a loop's tick) cannot make time race ahead of that work. Nor does
    /// it move while a sleeper the last jump woke has not run yet (`ManualClock.pendingWakeups`):
    /// on a pool of several threads a run of yields does not prove that it has, and a rate
    /// limiter's grant woken at its slot would reach the server a jump later, bunched with the
    /// next grants (the simulator's exact limit answered them 429).
    ///
    /// A step that neither finishes nor lets time move for `stallLimit` of real time (waiting on
    /// something no deadline will release, or `busy` stuck true) is cancelled and `Stalled` is
    /// thrown, saying what the clock saw, instead of a run that hangs without a word. `realTime`
    /// reads real time (injected so the tests of the limit do not depend on the machine's load).
    public static func drive(
        _ clock: ManualClock,
        busy: @escaping @Sendable () -> Bool = { false },
        stallLimit: Duration = .seconds(600),
        realTime: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
        _ step: @escaping @Sendable () async throws -> Void
    ) async throws {
        let done = Atomic<Bool>(false)
        let task = Task {
            defer { done.store(true, ordering: .releasing) }
            try await step()
        }
        var lastMove = realTime()
        var idleSpins = 0
        while !done.load(ordering: .acquiring) {
            await Task.yield()
            let isBusy = busy()
            idleSpins = isBusy || clock.pendingWakeups > 0 ? 0 : idleSpins + 1
            if idleSpins >= 16, let next = clock.nextDeadline {
                clock.advance(to: next)
                idleSpins = 0
                lastMove = realTime()
            } else if realTime() - lastMove > stallLimit {
                task.cancel()
                throw Stalled(at: clock.now(), busy: isBusy, pendingWakeups: clock.pendingWakeups, nextDeadline: clock.nextDeadline)
            }
        }
        try await task.value
    }

    /// A driven step that stopped making progress (`drive`'s `stallLimit`).
    public struct Stalled: Error, CustomStringConvertible {
        /// The virtual time it stalled at.
        public var at: Date
        /// Whether the work the driver cannot see was still running.
        public var busy: Bool
        /// Sleepers woken but not yet run.
        public var pendingWakeups: Int
        /// The earliest sleeper's deadline, if any.
        public var nextDeadline: Date?

        /// Says what the clock saw.
        public var description: String {
            let deadline = nextDeadline.map { "\($0)" } ?? "none"
            return "the virtual clock stalled at \(at): busy \(busy), woken but not run \(pendingWakeups), next deadline \(deadline)"
        }
    }
}
