import BookWatchCore
import BookWatchPostgres
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import OcrolusSimulator
import Synchronization

/// What one seed came to.
package struct ChaosOutcome: Sendable {
    /// The seed that drew the world and the run.
    package var seed: UInt64
    /// The world drawn, in one line.
    package var world: String
    /// Steps taken before the drain.
    package var steps: Int
    /// Steps the drain took (faults off, until quiet).
    package var drainSteps: Int
    /// Virtual time the run covered.
    package var virtualSeconds: Int
    /// The first invariant broken, if one was.
    package var violation: ChaosViolation?
    /// How often each kind of event and fault happened.
    package var counts: [String: Int]
    /// Machine transitions taken, by (from, input, to).
    package var transitions: [String: Int]
    /// The command line that replays this seed.
    package var replay: String
}

/// A broken invariant, with the Book it is about and that Book's trace.
package struct ChaosViolation: Sendable, CustomStringConvertible {
    /// The invariant broken.
    package var invariant: String
    /// How, from the simulator's ground truth.
    package var detail: String
    /// The Book it broke on, when one Book did.
    package var book: BookUUID?
    /// The steps that touched that Book.
    package var trace: [String] = []
    /// `invariant: detail`.
    package var description: String { "\(invariant): \(detail)" }
}

/// Where a seed's store lives: a fresh SQLite file in a directory, or a fresh schema on a
/// PostgreSQL server (dropped after the seed).
package enum ChaosDatabase: Sendable {
    case sqlite(directory: String)
    case postgres(url: String)
}

/// One seed's run: the simulator, `world.replicas` watchers sharing one store (SQLite or PostgreSQL), the
/// operator and the faults, all driven by one seeded scheduler that picks the next step among
/// everything that may happen now; invariants are checked after every step against the
/// simulator's ground truth. Used from one task only.
final class ChaosRun {
    let world: ChaosWorld
    let kernel: ChaosKernel
    let log: ChaosLog
    let simulation: OcrolusSimulation
    let store: any JobHistoryReading
    /// Removes the seed's database (its file or its schema).
    let removeStore: @Sendable () async -> Void
    let verifier: WebhookVerifier?
    var rng: SeededRandom
    var replicas: [Replica] = []
    /// Deliveries Ocrolus is sending now: delivered in any order, to any replica, or late.
    var inFlight: [WebhookDelivery] = []
    var operatorUntracked: Set<BookUUID> = []
    /// Books the status endpoint refused (403/2102) at least once.
    var refused: Set<BookUUID> = []
    var everTracked: [BookUUID: Date] = [:]
    /// Since when the operator has had a Book untracked, and the spans it was untracked before
    /// a track brought it back (not time served, `served(from:to:book:)`).
    var untrackedSince: [BookUUID: Date] = [:]
    var untrackedSpans: [BookUUID: [(Date, Date)]] = [:]
    var creationsSeen = 0
    /// Intervals (global time) with no replica up: no liveness is owed for them.
    var downSince: Date?
    var downtime: [(Date, Date)] = []
    var rateChecks: [Int: GCRACheck] = [:]
    /// The step at which each call was first seen parked.
    var callSeenAt: [UInt64: Int] = [:]
    var resultCount = -1
    /// Supersessions (which delete results) seen by the last duplicate check: a step that
    /// deletes one result and stores another leaves the count alone.
    var checkedSupersessions = 0
    /// The count of complete jobs at the last check of stored results (a job completing makes
    /// its results final, so they are checked again).
    var checkedCompleteJobs = -1
    /// The Ocrolus generation each stored body shows (`generation(of:)`).
    var generations: [[UInt8]: Int?] = [:]
    var step = 0
    /// Chains whose last run found nothing to do, with nothing else happening since: starting
    /// them again would be a step wasted.
    var idle: Set<ChainKey> = []
    /// What each replica's chains did last (units of work).
    let worked = ChainResults()
    /// The rows the store's writes have changed so far (SQLite), or nil: the safety check then
    /// goes by store calls of any kind.
    let rowsChanged: (@Sendable () -> Int?)?
    /// The rows changed (or store calls) counted when the safety check last read the store (none
    /// since: nothing it reads can have changed, and time only makes "a poll due within" easier).
    var checkedAtStoreChanges = -1
    /// A violation seen in the middle of a step (a delivery answered 200 but not in the inbox).
    var pendingViolation: ChaosViolation?
    let quiet = Logger(label: "chaos") { _ in SwiftLogNoOpLogHandler() }

    /// One replica: a watcher incarnation over the shared store, behind a crash gate.
    final class Replica {
        let index: Int
        var incarnation = 0
        var gate = CrashGate()
        var watcher: Watcher?
        var store: ChaosStore?
        var health = ServiceHealth()
        var paused = false
        init(index: Int) { self.index = index }
        var up: Bool { !gate.isDead && !paused }
    }

    /// Opens the seed's store in `database` and sets up its world (no replica runs yet).
    /// `executor`: where the replicas' chains run (the caller's task should prefer it too);
    /// `template`: a migrated, empty SQLite file the seed's store starts as a copy of
    /// (`makeTemplate`).
    static func open(
        world: ChaosWorld,
        database: ChaosDatabase,
        executor: ChaosExecutor? = nil,
        template: String? = nil
    ) async throws -> ChaosRun {
        // Everything that can fail before the store opens, so a failure leaves no store behind.
        let verifier = try world.simulation.webhookSecret.map { try WebhookVerifier(secrets: [$0]) }
        let jitter = Mutex(SeededRandom(seed: world.seed &+ 0x5EED))
        let random: @Sendable () -> Double = { jitter.withLock { $0.unit() } }
        let name = "chaos_\(world.seed)_\(UUID().uuidString.prefix(8).lowercased())"
        switch database {
        case .sqlite(let directory):
            let path = "\(directory)/\(name).sqlite"
            if let template { try FileManager.default.copyItem(atPath: template, toPath: path) }
            let store: SQLiteBookStore
            do {
                store = try SQLiteBookStore(path: path, schedule: world.schedule, random: random, inline: true)
            } catch {
                removeFiles(of: path)
                throw error
            }
            let changes: @Sendable () -> Int? = { try? store.rowsChangedCount() }
            return ChaosRun(world: world, store: store, verifier: verifier, executor: executor, rowsChanged: changes) {
                try? store.close()
                removeFiles(of: path)
            }
        case .postgres(let url):
            // A schema the URL names would be the one dropped after the seed: refused
            // (`BenchChaosCommand.validate` says so first).
            guard let named = DatabaseLocation.url(url, schema: name) else {
                throw StoreError(.invalidLocation, subject: "--database", detail: "must not name a schema: each seed makes its own")
            }
            let store = try await PostgresBookStore.open(
                url: named,
                schedule: world.schedule,
                maximumConnections: 4,
                logger: Logger(label: "chaos.postgres") { _ in SwiftLogNoOpLogHandler() },
                random: random
            )
            return ChaosRun(world: world, store: store, verifier: verifier, executor: executor, patience: 120) {
                do {
                    try await store.dropSchema(prefix: "chaos_")
                } catch {
                    FileHandle.standardError.write(Data("chaos: could not drop schema \(name): \(error)\n".utf8))
                }
                try? await store.close()
            }
        }
    }

    /// Removes an SQLite database's file and its -wal and -shm (those that exist).
    static func removeFiles(of path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// Makes an empty store in `directory` with every migration applied, for seeds to copy:
    /// migrating a fresh file per seed was a twentieth of a search. Its path; the caller removes it.
    static func makeTemplate(directory: String) throws -> String {
        let path = "\(directory)/chaos_template_\(UUID().uuidString.prefix(8).lowercased()).sqlite"
        do {
            let store = try SQLiteBookStore(path: path)
            try store.close()  // the last connection checkpoints: one file, no -wal
        } catch {
            removeFiles(of: path)
            throw error
        }
        return path
    }

    private init(
        world: ChaosWorld,
        store: any JobHistoryReading,
        verifier: WebhookVerifier?,
        executor: ChaosExecutor?,
        patience: TimeInterval = 20,
        rowsChanged: (@Sendable () -> Int?)? = nil,
        remove: @escaping @Sendable () async -> Void
    ) {
        self.rowsChanged = rowsChanged
        self.world = world
        let kernel = ChaosKernel(start: world.simulation.start, patience: patience, executor: executor)
        self.kernel = kernel
        log = ChaosLog(start: world.simulation.start, now: { kernel.now })
        simulation = OcrolusSimulation(config: world.simulation, clock: ChaosClock(kernel: kernel, replica: nil))
        self.store = store
        removeStore = remove
        self.verifier = verifier
        rng = SeededRandom(seed: world.seed ^ 0x0C4A_05C4_A05C)
    }

    // MARK: the run

    func run(steps: Int, traceLines: Int = 60) async throws -> ChaosOutcome {
        // Removed in a task of its own: a seed cancelled because another failed still drops its
        // schema (a cancelled task's store calls would fail at once).
        let remove = removeStore
        defer { kernel.stop() }
        do {
            let outcome = try await search(steps: steps, traceLines: traceLines)
            await Task { await remove() }.value
            return outcome
        } catch {
            await Task { await remove() }.value
            throw error
        }
    }

    private func search(steps: Int, traceLines: Int) async throws -> ChaosOutcome {
        for index in 0..<world.replicas {
            replicas.append(Replica(index: index))
            start(replicas[index])
        }
        try await settle()
        var violation: ChaosViolation?
        while step < steps, violation == nil {
            step += 1
            log.setStep(step)
            try await takeStep(drain: false)
            violation = try await checkSafety()
        }
        let searchSteps = step
        // The drain's real bound is its virtual deadline; the step cap only stops a drain whose
        // time no longer moves. 20 per step searched was too few for a slow world (seed 26455:
        // a 425 window of two hours at 1 call/s, 20,000 steps ended 40 s before the analytics
        // were ready, read as a generation never retrieved).
        if violation == nil { violation = try await drain(maxSteps: max(steps * 100, 25_000)) }
        if var found = violation {
            found.trace = log.trace(of: found.book, limit: traceLines)
            violation = found
        }
        return ChaosOutcome(
            seed: world.seed,
            world: world.summary,
            steps: searchSteps,
            drainSteps: step - searchSteps,
            virtualSeconds: Int(kernel.now.timeIntervalSince(world.simulation.start)),
            violation: violation,
            counts: log.counts,
            transitions: log.transitions,
            replay: world.replay(steps: steps)
        )
    }

    /// Heals the world (replicas up, no API faults, no operator), then runs until every
    /// generation owed is retrieved or the deadline passes: liveness.
    func drain(maxSteps: Int) async throws -> ChaosViolation? {
        log.note(replica: nil, nil, "drain: replicas up, API faults off")
        var faults = await simulation.faults
        let loss = faults.webhookDrop
        faults = FaultConfig()
        faults.webhookDrop = loss
        await simulation.setFaults(faults)
        for replica in replicas {
            replica.paused = false
            if replica.gate.isDead { try await restart(replica) }
            // A crash armed before the drain would otherwise fire in it, and the drain restarts
            // no one: both replicas dead for its whole length read as a generation never
            // retrieved (seed 1982, a false positive).
            replica.gate.disarm()
        }
        let settledAt = max(kernel.now, simulation.settledAt)
        let deadline = settledAt.addingTimeInterval(8 * world.schedule.maximum + world.lease + 3 * 3600)
        var drained = 0
        while drained < maxSteps {
            drained += 1
            step += 1
            log.setStep(step)
            try await takeStep(drain: true)
            try await retryRefused()
            if let violation = try await checkSafety() { return violation }
            if kernel.now >= settledAt, drained % 20 == 0, try await checkLiveness() == nil { return nil }
            if kernel.now > deadline { return try await checkLiveness() }
        }
        if let violation = try await checkLiveness() { return violation }
        return nil
    }

    /// A refusal confirmed by a second one is permanent to bookwatch (the Book fails, no more
    /// polls; one refusal is only a doubt); in the drain, access
    /// is back (the refusal lifted with the other faults) and the operator says `retry`, also
    /// for a refused answer that was still in flight when the drain began. Only a Book that
    /// Ocrolus refused and that failed for that refusal (code 2102) gets this help.
    func retryRefused() async throws {
        for uuid in refused.sorted(by: { $0.rawValue < $1.rawValue }) {
            guard let record = try await store.book(uuid), record.machine.phase == .failed,
                record.machine.failureReason?.contains("2102") == true
            else { continue }
            log.count("operator: retry after a refusal")
            log.touchedStore()
            let outcome = try await store.apply(.command(.retry), to: uuid, at: kernel.now, options: TransitionOptions())
            log.note(replica: nil, uuid, "operator retry (access restored) -> \(outcome?.machine.phase.rawValue ?? "nothing")")
        }
    }

    // MARK: replicas

    func start(_ replica: Replica) {
        replica.incarnation += 1
        replica.gate = CrashGate()
        replica.paused = false
        kernel.revive(replica: replica.index)
        let clock = ChaosClock(kernel: kernel, replica: replica.index)
        let store = ChaosStore(base: store, gate: replica.gate, replica: replica.index, log: log)
        let limiter = RateLimiter(rate: world.rate, burst: world.burst, clock: clock, onParkedChange: { [kernel] in kernel.changed() })
        let client = OcrolusClient(
            configuration: OcrolusConfiguration(
                apiBaseURL: "http://simulator",
                tokenURL: "http://simulator/oauth/token",
                credentials: .init(clientID: "chaos", clientSecret: "chaos-secret-0123456789")
            ),
            transport: ChaosTransport(kernel: kernel, replica: replica.index),
            limiter: limiter,
            clock: clock,
            logger: quiet,
            onTokenWaitingChange: { [kernel] in kernel.changed() }
        )
        kernel.register(replica: replica.index, limiter, client.tokens)
        var configuration = WatcherConfiguration()
        configuration.analytics = world.endpoints
        configuration.autoTrack = world.autoTrack
        configuration.trustWebhooks = world.trustWebhooks
        configuration.requestRate = world.rate
        configuration.pollConcurrency = 1
        configuration.jobConcurrency = 1
        configuration.lease = world.lease
        configuration.owner = "r\(replica.index).\(replica.incarnation)"
        configuration.retention = world.retention
        configuration.pruneEvery = min(configuration.pruneEvery, world.retention / 4)
        let health = ServiceHealth(startedAt: clock.now())
        let jitter = Mutex(SeededRandom(seed: world.seed &+ UInt64(replica.index * 1_000 + replica.incarnation)))
        let watcher = Watcher(
            store: store,
            client: client,
            clock: clock,
            configuration: configuration,
            health: health,
            logger: quiet,
            random: { jitter.withLock { $0.unit() } }
        )
        replica.watcher = watcher
        replica.store = store
        replica.health = health
        // The limiter keeps one call of the burst in reserve: hold it to that.
        rateChecks[replica.index] = GCRACheck(rate: world.rate, burst: RateBudget.usableBurst(world.burst))
        log.note(replica: replica.index, nil, "started as \(configuration.owner)")
        kernel.start(replica: replica.index, kind: .resume) { try? await watcher.resume() }
    }

    func restart(_ replica: Replica) async throws {
        if !replica.gate.isDead {
            // A graceful restart: the loops are cancelled and finish what they can.
            kernel.cancelChains(replica: replica.index)
            try await settle()
            replica.gate.kill()
        }
        kernel.kill(replica: replica.index)
        kernel.cancelChains(replica: replica.index)
        try await settle()
        start(replica)
        try await settle()
    }

    /// Waits for quiet, and buries replicas whose gate fired meanwhile (their calls fail, their
    /// chains are cancelled).
    func settle() async throws {
        try await kernel.settle()
        for replica in replicas where replica.gate.isDead && !kernel.isDead(replica: replica.index) {
            log.count("fault: killed at a store boundary")
            kernel.kill(replica: replica.index)
            kernel.cancelChains(replica: replica.index)
            try await kernel.settle()
        }
    }
}
