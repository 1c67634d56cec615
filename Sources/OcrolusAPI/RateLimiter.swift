import BookWatchClocks
import BookWatchCore
import Foundation
import Synchronization

/// Which queue an outgoing call waits in. Retrievals (analytics: the goal, and rare) overtake
/// urgent calls (webhook-triggered and confirmation polls, tokens), which overtake queued
/// background calls (scheduled polls); FIFO within a priority.
public enum RequestPriority: Int, Sendable, CaseIterable, Comparable {
    case retrieval = 0
    case urgent = 1
    case background = 2

    /// Higher priority first.
    public static func < (lhs: RequestPriority, rhs: RequestPriority) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A rate budget shared by the processes of one deployment (replicas on one database): Ocrolus
/// limits the organisation, so replicas draw every call from one bucket instead of one each.
public protocol SharedRateBudget: Sendable {
    /// Takes one call's slot for a call of `priority`, with `behind` the priority of this
    /// process's next waiter (if one waits): nil when granted, else the seconds to wait before
    /// asking again. Throws when the budget cannot be reached.
    func take(_ priority: RequestPriority, behind: RequestPriority?, at now: Date, rate: Double, burst: Double) async throws -> TimeInterval?

    /// Shares a 429's pause (and the slower rate after it) with every process.
    func penalize(at now: Date, retryAfter: TimeInterval?, rate: Double, burst: Double, slowdown: TimeInterval) async throws
}

/// The one token bucket every outgoing call passes (default 5/s, burst 25, one call of which is
/// kept in reserve: `RateBudget.usableBurst`).
///
/// Invariant: over any run, grants never exceed `rate × elapsed + usableBurst` (the burst less one, when at least 2). The bucket is kept as
/// GCRA's theoretical arrival time in seconds from the limiter's creation, which is drift-free
/// (a token bucket in `Date`s accumulates rounding). Only the head waiter (the
/// oldest of the most urgent queue) sleeps on the clock; the others park until they become head,
/// so a wake-up never grants out of order. A 429 pauses grants for its `Retry-After` and halves
/// the rate for `slowdownPeriod`.
///
/// With a `SharedRateBudget` (replicas on PostgreSQL), the bucket is the deployment's: the head
/// waiter asks the shared budget for its slot instead of the local bucket (the local queues still
/// order this process's calls, and a 429 pauses both), and a budget that cannot be reached is
/// asked again every `budgetRetry` seconds: no call leaves without a slot.
public final class RateLimiter: Sendable {
    /// Requests per second (`BOOKWATCH_RATE_LIMIT`).
    public let rate: Double
    /// Requests allowed at once before the rate applies (`BOOKWATCH_RATE_BURST`).
    public let burst: Double
    /// How long the rate is halved after a 429.
    public let slowdownPeriod: TimeInterval
    private let clock: any WallClock
    private let state: Mutex<State>
    /// The deployment's shared bucket, when replicas share one (nil: this process's own).
    public let budget: (any SharedRateBudget)?
    /// Seconds between attempts while the shared budget cannot be reached.
    public let budgetRetry: TimeInterval
    private let budgetFailures = Atomic<Int>(0)
    private let onParkedChange: @Sendable () -> Void

    private struct Waiter {
        let ticket: UInt64
        var parked: CheckedContinuation<Void, any Error>?
    }

    private struct State {
        /// Times are seconds since `origin`: small numbers keep full Double precision.
        let origin: Date
        /// GCRA's theoretical arrival time: the bucket is empty until `tat - (burst - 1) / rate`.
        var tat: Double = 0
        var pausedUntil: Date?
        var slowUntil: Date?
        var queues: [[Waiter]] = Array(repeating: [], count: RequestPriority.allCases.count)
        var nextTicket: UInt64 = 0
        var granted: Int = 0
        /// Parked waiters resumed as the new head that have not run yet.
        var handedOff: Set<UInt64> = []
    }

    private enum Step {
        case granted(wake: CheckedContinuation<Void, any Error>?)
        case sleep(until: Date)
        case park
        /// Head, not paused: ask the shared budget (`behind`: the next waiter's priority).
        case ask(behind: RequestPriority?)
    }

    /// A limiter of `rate` per second with `burst`, on `clock`.
    /// With `budget`, calls are drawn from the deployment's shared bucket at `rate` (the
    /// organisation's figure) instead of this process's own. `onParkedChange` is told after
    /// every change that may move `parkedCount` (a deterministic scheduler reads its counts
    /// consistently by it).
    public init(
        rate: Double = 5,
        burst: Double = 25,
        slowdownPeriod: TimeInterval = 60,
        clock: any WallClock,
        budget: (any SharedRateBudget)? = nil,
        budgetRetry: TimeInterval = 1,
        onParkedChange: @escaping @Sendable () -> Void = {}
    ) {
        self.onParkedChange = onParkedChange
        self.rate = max(rate, 0.001)
        self.burst = max(burst, 1)
        self.slowdownPeriod = slowdownPeriod
        self.clock = clock
        self.budget = budget
        self.budgetRetry = max(budgetRetry, 0.001)
        state = Mutex(State(origin: clock.now()))
    }

    /// Times the shared budget could not be reached (each is retried after `budgetRetry`).
    public var budgetFailureCount: Int { budgetFailures.load(ordering: .relaxed) }

    /// Calls granted so far.
    public var grantedCount: Int { state.withLock { $0.granted } }

    /// Waiters parked until they become head (not sleeping on the clock): a deterministic
    /// scheduler counts them as blocked.
    public var parkedCount: Int {
        state.withLock { state in state.queues.reduce(0) { $0 + $1.filter { $0.parked != nil }.count } }
    }

    /// Parked waiters woken to become head that have not run yet: a driver of virtual time waits
    /// for them as for the clock's own wake-ups (`ManualClock.pendingWakeups`), or their grants
    /// would slip by whole jumps.
    public var handoffsInFlight: Int { state.withLock { $0.handedOff.count } }

    /// Calls waiting now, by priority.
    public var waiting: [RequestPriority: Int] {
        state.withLock { state in
            Dictionary(uniqueKeysWithValues: RequestPriority.allCases.map { ($0, state.queues[$0.rawValue].count) })
        }
    }

    /// Waits for a token; returns how long the caller waited (seconds of clock time).
    @discardableResult
    public func acquire(_ priority: RequestPriority) async throws -> TimeInterval {
        let started = clock.now()
        let ticket = state.withLock { state -> UInt64 in
            state.nextTicket += 1
            state.queues[priority.rawValue].append(Waiter(ticket: state.nextTicket))
            return state.nextTicket
        }
        while true {
            let now = clock.now()
            let step = state.withLock { state in Self.step(&state, ticket: ticket, now: now, rate: rate, burst: burst, shared: budget != nil) }
            switch step {
            case .ask(let behind):
                guard let budget else { continue }
                let wait: TimeInterval?
                do {
                    wait = try await Self.leavingOnCancel { [rate, burst] in
                        try await budget.take(priority, behind: behind, at: now, rate: rate, burst: burst)
                    }
                } catch is CancellationError {
                    leave(ticket)
                    throw CancellationError()
                } catch {
                    // A store call cancelled with its task may throw its own error.
                    if Task.isCancelled {
                        leave(ticket)
                        throw CancellationError()
                    }
                    budgetFailures.add(1, ordering: .relaxed)
                    wait = budgetRetry
                }
                guard let wait else {
                    let wake = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                        Self.remove(&state, ticket)
                        state.granted += 1
                        return Self.takeHeadContinuation(&state)
                    }
                    onParkedChange()
                    wake?.resume()
                    return clock.now().timeIntervalSince(started)
                }
                do {
                    try await clock.sleep(until: now.addingTimeInterval(max(wait, 0.001)))
                } catch {
                    leave(ticket)
                    throw error
                }
            case .granted(let wake):
                onParkedChange()
                wake?.resume()
                return clock.now().timeIntervalSince(started)
            case .sleep(let deadline):
                do {
                    try await clock.sleep(until: deadline)
                } catch {
                    leave(ticket)
                    throw error
                }
            case .park:
                defer { _ = state.withLock { $0.handedOff.remove(ticket) } }
                try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                        let resumeNow = state.withLock { state -> Bool in
                            if Self.isHead(state, ticket) { return true }
                            for q in state.queues.indices {
                                if let i = state.queues[q].firstIndex(where: { $0.ticket == ticket }) {
                                    state.queues[q][i].parked = continuation
                                    return false
                                }
                            }
                            return true  // already removed (cancelled): let the loop notice
                        }
                        if resumeNow { continuation.resume() } else { onParkedChange() }
                    }
                } onCancel: {
                    leave(ticket)
                }
                try Task.checkCancellation()
            }
        }
    }

    /// After a 429: no grants for `retryAfter` (or one token interval), then half rate for a
    /// while; with a shared budget, for every replica (a budget that cannot be reached keeps
    /// the pause local).
    public func penalize(retryAfter: TimeInterval?) async {
        let now = clock.now()
        pauseLocally(retryAfter: retryAfter, now: now)
        guard let budget else { return }
        do {
            try await budget.penalize(at: now, retryAfter: retryAfter, rate: rate, burst: burst, slowdown: slowdownPeriod)
        } catch {
            budgetFailures.add(1, ordering: .relaxed)
        }
    }

    private func pauseLocally(retryAfter: TimeInterval?, now: Date) {
        state.withLock { state in
            let pause = now.addingTimeInterval(max(retryAfter ?? 0, 1 / rate))
            state.pausedUntil = max(state.pausedUntil ?? pause, pause)
            state.slowUntil = now.addingTimeInterval(slowdownPeriod)
            // The server's bucket is empty: so is ours, from the end of the pause.
            let resume = pause.timeIntervalSince(state.origin)
            state.tat = max(state.tat, resume + (RateBudget.usableBurst(burst) - 1) * 2 / rate)  // 2: the slowed interval
        }
    }

    /// Removes a waiter (cancelled) and wakes whoever becomes head.
    private func leave(_ ticket: UInt64) {
        let (own, next) = state.withLock { state -> (CheckedContinuation<Void, any Error>?, CheckedContinuation<Void, any Error>?) in
            var own: CheckedContinuation<Void, any Error>?
            own = Self.remove(&state, ticket)
            return (own, Self.takeHeadContinuation(&state))
        }
        onParkedChange()
        own?.resume(throwing: CancellationError())
        next?.resume()
    }

    /// Runs `body` (a shared budget's database call) so that a cancelled caller returns at once,
    /// even when the call itself does not (a store call waiting for a connection): shutdown never
    /// waits on the budget. The call finishes on its own; a slot it took then goes unused.
    static func leavingOnCancel<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try Task.checkCancellation()  // already cancelled: no call is started (it could take a slot nobody uses)
        let once = ResumeOnce<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                once.set(continuation)
                Task {
                    do { once.resume(.success(try await body())) } catch { once.resume(.failure(error)) }
                }
            }
        } onCancel: {
            once.resume(.failure(CancellationError()))
        }
    }

    /// Takes a waiter out of its queue; answers its parked continuation, if it had one.
    @discardableResult
    private static func remove(_ state: inout State, _ ticket: UInt64) -> CheckedContinuation<Void, any Error>? {
        for q in state.queues.indices {
            if let i = state.queues[q].firstIndex(where: { $0.ticket == ticket }) { return state.queues[q].remove(at: i).parked }
        }
        return nil
    }

    private static func isHead(_ state: State, _ ticket: UInt64) -> Bool {
        state.queues.first(where: { !$0.isEmpty })?.first?.ticket == ticket
    }

    private static func takeHeadContinuation(_ state: inout State) -> CheckedContinuation<Void, any Error>? {
        guard let q = state.queues.firstIndex(where: { !$0.isEmpty }) else { return nil }
        let continuation = state.queues[q][0].parked
        state.queues[q][0].parked = nil
        if continuation != nil { state.handedOff.insert(state.queues[q][0].ticket) }
        return continuation
    }

    private static func step(_ state: inout State, ticket: UInt64, now: Date, rate: Double, burst: Double, shared: Bool) -> Step {
        guard isHead(state, ticket) else { return .park }
        if let paused = state.pausedUntil, now < paused { return .sleep(until: paused) }
        if shared {
            // The next waiter after this one: the rest of the head's queue, else the next queue's.
            var behind: RequestPriority?
            var seenHead = false
            for (q, queue) in state.queues.enumerated() where !queue.isEmpty {
                if !seenHead {
                    seenHead = true
                    if queue.count > 1 {
                        behind = RequestPriority(rawValue: q)
                        break
                    }
                    continue
                }
                behind = RequestPriority(rawValue: q)
                break
            }
            return .ask(behind: behind)
        }
        // Half rate while slowed down after a 429.
        let slowed = state.slowUntil.map { now < $0 } ?? false
        let interval = (slowed ? 2 : 1) / rate
        let t = now.timeIntervalSince(state.origin)
        // One call of the burst in reserve (`RateBudget.usableBurst`): calls that reach Ocrolus
        // closer together than they left (network delays vary) still conform to its bucket.
        let earliest = state.tat - (RateBudget.usableBurst(burst) - 1) * interval
        // A microsecond of slack absorbs Date rounding of the wake-up time; it cannot accumulate,
        // because `tat` advances from itself, not from `t`, when a grant comes early.
        guard t >= earliest - 1e-6 else {
            return .sleep(until: state.origin.addingTimeInterval(max(earliest, t + 0.001)))
        }
        state.tat = max(state.tat, t) + interval
        state.granted += 1
        if let q = state.queues.firstIndex(where: { !$0.isEmpty }) { state.queues[q].removeFirst() }
        return .granted(wake: takeHeadContinuation(&state))
    }
}

/// A continuation resumed once, by whichever comes first: the result or a cancellation (the
/// result may also come before the continuation is set).
final class ResumeOnce<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var result: Result<T, any Error>?
    }

    private let state = Mutex(State())

    func set(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if let result = state.result { return result }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(_ result: Result<T, any Error>) {
        let waiting = state.withLock { state -> CheckedContinuation<T, any Error>? in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.continuation = nil }
            return state.continuation
        }
        waiting?.resume(with: result)
    }
}
