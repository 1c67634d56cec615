import BookWatchClocks
import BookWatchCore
import Foundation
import OcrolusAPI
import Synchronization

/// The one place a chaos run's concurrent work waits: virtual time (with a per-replica offset,
/// so one replica's clock can step), sleepers, API calls parked until the scheduler answers
/// them, and the chains of work (`Watcher` steps) running per replica.
///
/// The run is deterministic because at most one chain runs at a time: the scheduler starts or
/// wakes one, then waits until every live chain is blocked again (`settle`), counting what can
/// block a chain: a sleep on this clock, a parked call, a rate-limiter wait. A chain does one
/// unit of work (the chaos watchers run with concurrency 1), so it has one leaf at a time.
final class ChaosKernel: Sendable {
    /// A call the scheduler has not answered yet. `arrived` holds the simulator's answer once the
    /// request has reached it (the view taken then, whatever happens before it is returned).
    struct Call {
        let id: UInt64
        let replica: Int
        let request: OutgoingRequest
        let sentAt: Date
        var arrived: IncomingResponse?
        let continuation: CheckedContinuation<IncomingResponse, any Error>
    }

    struct Chain {
        let replica: Int
        let kind: ChainKind
        var task: Task<Void, Never>?
    }

    private struct State {
        var nextID: UInt64 = 0
        var calls: [Call] = []
        var chains: [UInt64: Chain] = [:]
        var offsets: [Int: TimeInterval] = [:]
        /// The furthest any replica's clock has run ahead of global time, and behind it.
        var largestAhead: TimeInterval = 0
        var largestBehind: TimeInterval = 0
        /// Every call sent (parked), in order, until the rate check takes them.
        var sent: [Call] = []
        var dead: Set<Int> = []
    }

    private let state: Mutex<State>
    /// Each replica's current limiter and token provider (an earlier incarnation's chains are
    /// gone before the next one starts).
    private let waits = Mutex<[Int: (RateLimiter, TokenProvider)]>([:])

    /// Global (Ocrolus's) time; a replica's clock is a view of it with an offset.
    let clock: ManualClock

    /// Real seconds a chain may neither block nor end before the run fails as stuck: longer on
    /// PostgreSQL, where one store call may retry a serialization failure for a while.
    let patience: TimeInterval

    /// Changes to what `running` counts: every component it reads tells it after each change, so
    /// a reading between two equal counts is one consistent state (`settle`).
    private let changes = ChangeCount()

    /// Where chains run (nil: the shared pool).
    let executor: ChaosExecutor?

    init(start: Date, patience: TimeInterval = 20, executor: ChaosExecutor? = nil) {
        self.patience = patience
        self.executor = executor
        clock = ManualClock(start: start, onSleepersChange: { [changes] in changes.changed() })
        state = Mutex(State())
        let changes = self.changes
        // Wakes `settle` now and then, so it can tell a chain that never blocks (patience);
        // until `stop` (a kernel outlives its run: chains left blocked hold it).
        ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                changes.nudge()
            }
        }
    }

    private let ticker: Task<Void, Never>

    /// The run is over: the ticker that wakes `settle` ends.
    func stop() { ticker.cancel() }

    /// Tell `settle` that something `running` counts changed (a limiter's or token provider's hook).
    func changed() { changes.changed() }

    // MARK: time

    /// Global (Ocrolus's) time.
    var now: Date { clock.now() }

    /// A replica's wall clock: global time plus its offset.
    func now(replica: Int) -> Date { clock.now().addingTimeInterval(offset(replica: replica)) }

    func offset(replica: Int) -> TimeInterval { state.withLock { $0.offsets[replica] ?? 0 } }

    /// Steps a replica's clock (a relative sleep already begun keeps its length, as on a real
    /// machine whose wall clock is stepped).
    func step(replica: Int, by seconds: TimeInterval) {
        state.withLock {
            $0.offsets[replica, default: 0] += seconds
            $0.largestAhead = max($0.largestAhead, $0.offsets[replica, default: 0])
            $0.largestBehind = max($0.largestBehind, -$0.offsets[replica, default: 0])
        }
    }

    /// The largest distance any replica's clock has had from global time so far: a poll a
    /// replica set while its clock was that far ahead is that much later in global time, even
    /// after the clock stepped back.
    var largestOffset: TimeInterval { state.withLock { max($0.largestAhead, $0.largestBehind) } }

    /// The furthest any replica's clock has run ahead of global time so far: a poll it set is
    /// that much later in global time (for a replica that then died or stepped back).
    var largestAhead: TimeInterval { state.withLock { $0.largestAhead } }

    /// The furthest any replica's clock has run behind global time so far: a replica that stepped
    /// back sees the polls it set before that much later.
    var largestBehind: TimeInterval { state.withLock { $0.largestBehind } }

    /// Sleeps until `deadline` of `replica`'s clock (`nil`: global time).
    func sleep(replica: Int?, until deadline: Date) async throws {
        try await clock.sleep(until: deadline.addingTimeInterval(-(replica.map(offset(replica:)) ?? 0)))
    }

    /// The earliest sleeper's deadline (global time).
    var nextWakeUp: Date? { clock.nextDeadline }

    /// Moves global time forward (never back), waking every sleeper whose deadline has come.
    func advance(to date: Date) { clock.advance(to: date) }

    // MARK: calls

    /// Parks an API call until the scheduler answers or fails it; a dead replica's call fails at once.
    func park(replica: Int, request: OutgoingRequest) async throws -> IncomingResponse {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<IncomingResponse, any Error>) in
                let refused: Bool = state.withLock { state in
                    if Task.isCancelled || state.dead.contains(replica) { return true }
                    let call = Call(id: id, replica: replica, request: request, sentAt: clock.now(), continuation: continuation)
                    state.calls.append(call)
                    state.sent.append(call)
                    return false
                }
                if refused { continuation.resume(throwing: ChaosNetworkError.connectionRefused) } else { changes.changed() }
            }
        } onCancel: {
            let call = state.withLock { state -> Call? in
                guard let index = state.calls.firstIndex(where: { $0.id == id }) else { return nil }
                return state.calls.remove(at: index)
            }
            if let call {
                changes.changed()
                call.continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// The calls parked now, in an order that does not depend on thread timing (two chains
    /// woken together may park theirs in either order).
    var calls: [Call] {
        state.withLock { $0.calls }.sorted { ($0.replica, $0.request.url, $0.sentAt) < ($1.replica, $1.request.url, $1.sentAt) }
    }

    /// The calls sent since the last time this was asked (a call failed by a kill within the
    /// same step was still sent).
    func takeSent() -> [Call] {
        state.withLock { state in
            defer { state.sent = [] }
            return state.sent
        }
    }

    /// Records the simulator's answer of a parked call (it reached Ocrolus; not yet returned).
    func arrive(_ id: UInt64, _ response: IncomingResponse) {
        state.withLock { state in
            if let index = state.calls.firstIndex(where: { $0.id == id }) { state.calls[index].arrived = response }
        }
    }

    /// Returns a parked call's answer (or throws `error` into it).
    func finish(_ id: UInt64, with result: Result<IncomingResponse, any Error>) {
        let call = state.withLock { state -> Call? in
            guard let index = state.calls.firstIndex(where: { $0.id == id }) else { return nil }
            return state.calls.remove(at: index)
        }
        if let call {
            changes.changed()
            call.continuation.resume(with: result)
        }
    }

    // MARK: replicas and chains

    /// Marks a replica dead: its parked calls fail, and later ones are refused.
    func kill(replica: Int) {
        let failed = state.withLock { state -> [Call] in
            state.dead.insert(replica)
            let mine = state.calls.filter { $0.replica == replica }
            state.calls.removeAll { $0.replica == replica }
            return mine
        }
        changes.changed()
        for call in failed { call.continuation.resume(throwing: ChaosNetworkError.connectionRefused) }
    }

    func revive(replica: Int) { state.withLock { _ = $0.dead.remove(replica) } }

    func isDead(replica: Int) -> Bool { state.withLock { $0.dead.contains(replica) } }

    /// The limiter and token provider of a replica's incarnation: their waiters count as blocked.
    func register(replica: Int, _ limiter: RateLimiter, _ tokens: TokenProvider) { waits.withLock { $0[replica] = (limiter, tokens) } }

    /// Starts a chain of work for `replica`; it runs until it blocks or ends.
    func start(replica: Int, kind: ChainKind, _ body: @escaping @Sendable () async -> Void) {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            state.chains[state.nextID] = Chain(replica: replica, kind: kind)
            return state.nextID
        }
        changes.changed()
        let task = Task(executorPreference: executor) {
            await body()
            _ = self.state.withLock { $0.chains.removeValue(forKey: id) }
            self.changes.changed()
        }
        state.withLock { state in state.chains[id]?.task = task }
    }

    /// The kinds of chain alive for a replica.
    func chainKinds(replica: Int) -> Set<ChainKind> {
        state.withLock { Set($0.chains.values.filter { $0.replica == replica }.map(\.kind)) }
    }

    /// Cancels a replica's chains (a kill or a shutdown).
    func cancelChains(replica: Int) {
        let tasks = state.withLock { $0.chains.values.filter { $0.replica == replica }.compactMap(\.task) }
        for task in tasks { task.cancel() }
    }

    /// Chains neither sleeping, nor parked in a call, nor waiting in a limiter: running.
    var running: Int {
        let parked = waits.withLock { waits in
            var parked = 0
            for (limiter, tokens) in waits.values { parked += limiter.parkedCount + tokens.waitingCount.load(ordering: .relaxed) }
            return parked
        }
        let sleeping = clock.sleeperCount
        return state.withLock { $0.chains.count - $0.calls.count } - sleeping - parked
    }

    /// Waits until no chain runs. `running`'s counts live under separate locks, and a reading
    /// could catch a chain between waking another and blocking itself (counting both as
    /// blocked): so it is taken between two readings of `changes`, which every component bumps
    /// after each change of its count (a waker's bump comes before its own block), and kept only
    /// when they are equal: then it is one consistent state. (Three zero readings in a row with
    /// yields between, the rule before, let about one run of 20 seeds in ten take another
    /// history.) While a chain runs it waits for the next change rather than polling. Throws
    /// `ChaosStuck` when one keeps running for `patience` seconds of real time (a deadlock, or a
    /// wait the kernel cannot see).
    func settle() async throws {
        var spins = 0
        let started = ContinuousClock.now
        while true {
            let seen = changes.count
            let idle = running == 0
            if idle, changes.count == seen { return }
            if idle { continue }  // something moved while counting: count again
            spins += 1
            if spins <= Self.yieldsBeforeWaiting {
                await Task.yield()
                continue
            }
            await changes.next(after: seen)
            if (ContinuousClock.now - started).inSeconds > patience {
                throw ChaosStuck(detail: describeChains())
            }
        }
    }

    /// Yields before `settle` waits for a change (a unit of work often blocks within a few).
    static let yieldsBeforeWaiting = 64

    func describeChains() -> String {
        state.withLock { state in
            let chains = state.chains.values.map { "r\($0.replica):\($0.kind.rawValue)" }.sorted().joined(separator: ",")
            return "chains [\(chains)], sleepers \(clock.sleeperCount), calls \(state.calls.count)"
        }
    }
}

/// A count of changes, and one task waiting for the next.
private final class ChangeCount: Sendable {
    private struct State {
        var count: UInt64 = 0
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    var count: UInt64 { state.withLock { $0.count } }

    func changed() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.count &+= 1
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Wakes the waiter without a change (it looks at the time).
    func nudge() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Returns once the count is past `seen` (at once when it is), or when nudged.
    func next(after seen: UInt64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.count != seen { return true }
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// The units of work a replica runs, as `serve`'s loops do (one of each kind at a time).
enum ChainKind: String, Sendable, CaseIterable, Hashable {
    case inbox, polls, analytics, housekeeping, resume
}

enum ChaosNetworkError: Error, CustomStringConvertible {
    case connectionRefused
    case timedOut
    var description: String { self == .timedOut ? "request timed out" : "connection refused" }
}

struct ChaosStuck: Error, CustomStringConvertible {
    var detail: String
    var description: String { "a chain never blocked or ended: \(detail)" }
}

/// A replica's view of the kernel's time.
struct ChaosClock: WallClock {
    let kernel: ChaosKernel
    /// nil: global time (the simulator's).
    let replica: Int?
    func now() -> Date { replica.map { kernel.now(replica: $0) } ?? kernel.now }
    func sleep(until deadline: Date) async throws { try await kernel.sleep(replica: replica, until: deadline) }
}

/// A replica's API transport: every call parks in the kernel.
struct ChaosTransport: HTTPTransport {
    let kernel: ChaosKernel
    let replica: Int
    func send(_ request: OutgoingRequest) async throws -> IncomingResponse {
        try await kernel.park(replica: replica, request: request)
    }
}
