import BookWatchCore
import Foundation
import Synchronization

/// Wall-clock time, injected everywhere so tests and the simulator control it.
///
/// `now()` is a `Date` because stored times, webhook timestamps and RFC 3339 output are wall-clock;
/// `sleep(until:)` is the only way code waits.
public protocol WallClock: Sendable {
    func now() -> Date
    /// Suspends until `deadline` (returns at once when it has passed); throws on cancellation.
    func sleep(until deadline: Date) async throws
}

extension WallClock {
    /// Suspends for `seconds` of this clock's time.
    public func sleep(for seconds: TimeInterval) async throws {
        try await sleep(until: now().addingTimeInterval(seconds))
    }
}

/// The real clock.
public struct SystemClock: WallClock {
    /// The system's clock.
    public init() {}
    /// The current wall-clock time.
    public func now() -> Date { Date() }
    /// Sleeps in real time until `deadline`.
    public func sleep(until deadline: Date) async throws {
        let seconds = deadline.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .seconds(seconds)) }
    }
}

/// A clock that runs `factor` times faster than real time from `origin` (for live demos).
public struct ScaledClock: WallClock {
    /// The clock's time when it was made.
    public let origin: Date
    /// How many seconds of this clock pass per real second.
    public let factor: Double
    private let realStart: ContinuousClock.Instant

    /// A clock reading `origin` now and running `factor` times faster than real time.
    public init(origin: Date, factor: Double) {
        self.origin = origin
        self.factor = max(factor, 0.000_001)
        self.realStart = ContinuousClock.now
    }

    /// `origin` plus the real time elapsed, scaled.
    public func now() -> Date {
        let elapsed = ContinuousClock.now - realStart
        let seconds = elapsed.inSeconds
        return origin.addingTimeInterval(seconds * factor)
    }

    /// Sleeps the real time that `deadline` is away, scaled down.
    public func sleep(until deadline: Date) async throws {
        let virtual = deadline.timeIntervalSince(now())
        if virtual > 0 { try await Task.sleep(for: .seconds(virtual / factor)) }
    }
}

/// A clock that moves only when told to (`advance`), for deterministic tests and virtual runs.
///
/// Sleepers wake in deadline order when time passes their deadline; cancellation wakes a
/// sleeper with `CancellationError`.
public final class ManualClock: WallClock {
    private struct Sleeper {
        let id: UInt64
        let deadline: Date
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Date
        var nextID: UInt64 = 0
        var sleepers: [Sleeper] = []
        /// Sleepers `advance` woke that have not run yet.
        var woken: Set<UInt64> = []
    }

    private let state: Mutex<State>
    private let onSleepersChange: @Sendable () -> Void

    /// A clock standing at `start` until advanced. `onSleepersChange` is told after every change
    /// of `sleeperCount` (a deterministic scheduler reads its counts consistently by it).
    public init(start: Date = Date(timeIntervalSince1970: 1_774_000_000), onSleepersChange: @escaping @Sendable () -> Void = {}) {
        state = Mutex(State(now: start))
        self.onSleepersChange = onSleepersChange
    }

    /// The time it was last advanced to.
    public func now() -> Date { state.withLock { $0.now } }

    /// How many tasks are sleeping on this clock.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// Sleepers that `advance` woke and that have not yet returned from `sleep`: a driver that
    /// jumps time must wait for them, or the work a wake-up starts (a rate limiter's grant on its
    /// way to the server) would see time move under it.
    public var pendingWakeups: Int { state.withLock { $0.woken.count } }

    /// The earliest deadline anyone sleeps until, if any.
    public var nextDeadline: Date? { state.withLock { $0.sleepers.map(\.deadline).min() } }

    /// Returns once the clock is advanced to `deadline` (at once when it is there).
    public func sleep(until deadline: Date) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        defer { _ = state.withLock { $0.woken.remove(id) } }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: Bool = state.withLock { state in
                    if Task.isCancelled || deadline <= state.now { return true }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return false
                }
                if !resumeNow { onSleepersChange() }
                if resumeNow {
                    if Task.isCancelled { continuation.resume(throwing: CancellationError()) } else { continuation.resume() }
                }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            if let sleeper {
                onSleepersChange()
                sleeper.continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// Moves time forward by `seconds`, waking every sleeper whose deadline has come.
    public func advance(by seconds: TimeInterval) {
        advance(to: now().addingTimeInterval(seconds))
    }

    /// Moves time to `date` (never backwards), waking every sleeper whose deadline has come.
    public func advance(to date: Date) {
        let woken = state.withLock { state -> [Sleeper] in
            if date > state.now { state.now = date }
            let due = state.sleepers.filter { $0.deadline <= state.now }.sorted { ($0.deadline, $0.id) < ($1.deadline, $1.id) }
            state.sleepers.removeAll { $0.deadline <= state.now }
            state.woken.formUnion(due.map(\.id))
            return due
        }
        if !woken.isEmpty { onSleepersChange() }
        for sleeper in woken { sleeper.continuation.resume() }
    }
}
