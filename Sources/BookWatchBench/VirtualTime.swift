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
    /// A step that neither finishes nor lets time move for `stallLimit` of real time, and then
    /// for `stallPasses` more passes of the driver's loop (a process stopped and resumed has not
    /// stalled: time may move in the passes after), is cancelled and `Stalled` is thrown, saying what the clock saw and whether the
    /// step ended within a few seconds of its cancellation (one blocked in the database may not:
    /// then its store must not be cleaned up under it). Instead of a run that hangs without a
    /// word. `realTime` reads real time (injected so the limit's tests do not depend on load).
    public static func drive(
        _ clock: ManualClock,
        busy: @escaping @Sendable () -> Bool = { false },
        stallLimit: Duration = .seconds(600),
        stallPasses: Int = 10_000,
        realTime: @escaping @Sendable () -> SuspendingClock.Instant = { SuspendingClock.now },
        _ step: @escaping @Sendable () async throws -> Void
    ) async throws {
        let done = Atomic<Bool>(false)
        var lastMove = realTime()  // before the step can run: its own time counts
        var passes = 0
        let task = Task {
            defer { done.store(true, ordering: .releasing) }
            try await step()
        }
        var idleSpins = 0
        while !done.load(ordering: .acquiring) {
            await Task.yield()
            let isBusy = busy()
            idleSpins = isBusy || clock.pendingWakeups > 0 ? 0 : idleSpins + 1
            if idleSpins >= 16, let next = clock.nextDeadline {
                clock.advance(to: next)
                idleSpins = 0
                lastMove = realTime()
                passes = 0
            } else if realTime() - lastMove <= stallLimit {
                passes = 0
            } else if passes < stallPasses {
                passes += 1  // over the limit: counted from the moment it was first exceeded
            } else if !done.load(ordering: .acquiring) {
                task.cancel()
                let grace = ContinuousClock.now + .seconds(5)
                while !done.load(ordering: .acquiring), ContinuousClock.now < grace { try? await Task.sleep(for: .milliseconds(10)) }
                throw Stalled(
                    at: clock.now(),
                    busy: isBusy,
                    pendingWakeups: clock.pendingWakeups,
                    nextDeadline: clock.nextDeadline,
                    ended: done.load(ordering: .acquiring)
                )
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
        /// Whether the cancelled step ended (false: it may still hold the store).
        public var ended: Bool

        /// Says what the clock saw.
        public var description: String {
            let deadline = nextDeadline.map { "\($0)" } ?? "none"
            return "the virtual clock stalled at \(at): busy \(busy), woken but not run \(pendingWakeups), next deadline \(deadline)"
                + (ended ? "; the step ended when cancelled" : "; the step did not end when cancelled")
        }
    }
}
