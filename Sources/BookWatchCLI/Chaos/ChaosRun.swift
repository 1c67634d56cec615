import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import OcrolusSimulator
import Synchronization

/// What one seed came to.
struct ChaosOutcome: Sendable {
    var seed: UInt64
    var world: String
    var steps: Int
    var drainSteps: Int
    var virtualSeconds: Int
    var violation: ChaosViolation?
    var counts: [String: Int]
    var transitions: [String: Int]
    var replay: String
}

/// A broken invariant, with the Book it is about and that Book's trace.
struct ChaosViolation: Sendable, CustomStringConvertible {
    var invariant: String
    var detail: String
    var book: BookUUID?
    var trace: [String] = []
    var description: String { "\(invariant): \(detail)" }
}

/// One seed's run: the simulator, `world.replicas` watchers sharing one SQLite store, the
/// operator and the faults, all driven by one seeded scheduler that picks the next step among
/// everything that may happen now; invariants are checked after every step against the
/// simulator's ground truth. Used from one task only.
final class ChaosRun {
    let world: ChaosWorld
    let kernel: ChaosKernel
    let log: ChaosLog
    let simulation: OcrolusSimulation
    let store: SQLiteBookStore
    let path: String
    let verifier: WebhookVerifier?
    var rng: SeededRandom
    var replicas: [Replica] = []
    /// Deliveries Ocrolus is sending now: delivered in any order, to any replica, or late.
    var inFlight: [WebhookDelivery] = []
    var operatorUntracked: Set<BookUUID> = []
    var everTracked: [BookUUID: Date] = [:]
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
    var step = 0
    /// Chains whose last run found nothing to do, with nothing else happening since: starting
    /// them again would be a step wasted (replica:kind).
    var idle: Set<String> = []
    /// What each replica's chains did last (units of work), by replica:kind.
    let worked = ChainResults()
    /// The store calls counted when the safety check last read the store (none since: nothing
    /// it reads can have changed, and time only makes "a poll due within" easier).
    var checkedAtStoreCalls = -1
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

    init(world: ChaosWorld, directory: String) throws {
        self.world = world
        let kernel = ChaosKernel(start: world.simulation.start)
        self.kernel = kernel
        log = ChaosLog(start: world.simulation.start, now: { kernel.now })
        simulation = OcrolusSimulation(config: world.simulation, clock: ChaosClock(kernel: kernel, replica: nil))
        path = "\(directory)/chaos-\(world.seed)-\(UUID().uuidString).sqlite"
        let jitter = Mutex(SeededRandom(seed: world.seed &+ 0x5EED))
        store = try SQLiteBookStore(path: path, schedule: world.schedule, random: { jitter.withLock { $0.unit() } }, inline: true)
        verifier = try world.simulation.webhookSecret.map { try WebhookVerifier(secrets: [$0]) }
        rng = SeededRandom(seed: world.seed ^ 0x0C4A_05C4_A05C)
    }

    func cleanUp() {
        try? store.close()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    // MARK: the run

    func run(steps: Int, traceLines: Int = 60) async throws -> ChaosOutcome {
        defer { cleanUp() }
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
        if violation == nil { violation = try await drain(maxSteps: max(steps * 20, 5_000)) }
        if var found = violation {
            found.trace = log.trace(of: found.book, limit: traceLines)
            violation = found
        }
        return ChaosOutcome(
            seed: world.seed, world: world.summary, steps: searchSteps, drainSteps: step - searchSteps,
            virtualSeconds: Int(kernel.now.timeIntervalSince(world.simulation.start)), violation: violation, counts: log.counts,
            transitions: log.transitions, replay: world.replay(steps: steps))
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
        }
        let settledAt = max(kernel.now, simulation.settledAt)
        let deadline = settledAt.addingTimeInterval(8 * world.schedule.maximum + world.lease + 3 * 3600)
        var drained = 0
        while drained < maxSteps {
            drained += 1
            step += 1
            log.setStep(step)
            try await takeStep(drain: true)
            if let violation = try await checkSafety() { return violation }
            if kernel.now >= settledAt, drained % 20 == 0, try await checkLiveness() == nil { return nil }
            if kernel.now > deadline { return try await checkLiveness() }
        }
        if let violation = try await checkLiveness() { return violation }
        return nil
    }

    // MARK: replicas

    func start(_ replica: Replica) {
        replica.incarnation += 1
        replica.gate = CrashGate()
        replica.paused = false
        kernel.revive(replica: replica.index)
        let clock = ChaosClock(kernel: kernel, replica: replica.index)
        let store = ChaosStore(base: store, gate: replica.gate, replica: replica.index, log: log)
        let limiter = RateLimiter(rate: world.rate, burst: world.burst, clock: clock)
        let client = OcrolusClient(
            configuration: OcrolusConfiguration(
                apiBaseURL: "http://simulator", tokenURL: "http://simulator/oauth/token",
                credentials: .init(clientID: "chaos", clientSecret: "chaos-secret-0123456789")),
            transport: ChaosTransport(kernel: kernel, replica: replica.index), limiter: limiter, clock: clock, logger: quiet)
        kernel.register(replica: replica.index, limiter, client.tokens)
        var configuration = WatcherConfiguration()
        configuration.analytics = world.endpoints
        configuration.autoTrack = world.autoTrack
        configuration.trustWebhooks = world.trustWebhooks
        configuration.pollConcurrency = 1
        configuration.jobConcurrency = 1
        configuration.lease = world.lease
        configuration.owner = "r\(replica.index).\(replica.incarnation)"
        let health = ServiceHealth(startedAt: clock.now())
        let jitter = Mutex(SeededRandom(seed: world.seed &+ UInt64(replica.index * 1_000 + replica.incarnation)))
        let watcher = Watcher(
            store: store, client: client, clock: clock, configuration: configuration, health: health, logger: quiet,
            random: { jitter.withLock { $0.unit() } })
        replica.watcher = watcher
        replica.store = store
        replica.health = health
        rateChecks[replica.index] = GCRACheck(rate: world.rate, burst: world.burst)
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

    // MARK: steps

    enum Action {
        case chain(Int, ChainKind)
        case arrive(UInt64)
        case answer(UInt64)
        case timeOut(UInt64)
        case deliver(Int, to: Int, loseAnswer: Bool)
        case advanceSmall, advanceToNext, advanceBig
        case operatorAction
        case changeFaults
        case armCrash(Int), kill(Int), restart(Int), pause(Int), unpause(Int), stepClock(Int)
    }

    func takeStep(drain: Bool) async throws {
        var choices: [(Double, Action)] = []
        for replica in replicas where replica.up {
            let running = kernel.chainKinds(replica: replica.index)
            for kind in [ChainKind.inbox, .polls, .analytics, .housekeeping]
            where !running.contains(kind) && !running.contains(.resume) && !idle.contains("\(replica.index):\(kind)") {
                choices.append((kind == .housekeeping ? 0.3 : 2, .chain(replica.index, kind)))
            }
        }
        let paused = Set(replicas.filter(\.paused).map(\.index))
        for call in kernel.calls where !paused.contains(call.replica) {
            if call.arrived == nil { choices.append((1.5, .arrive(call.id))) }
            choices.append((3, .answer(call.id)))
            if !drain { choices.append((0.1, .timeOut(call.id))) }
        }
        for (index, _) in inFlight.enumerated().prefix(8) {
            let target = Int(rng.next() % UInt64(replicas.count))
            choices.append((2, .deliver(index, to: target, loseAnswer: !drain && rng.chance(0.05))))
        }
        choices.append((drain ? 0.5 : 1, .advanceSmall))
        choices.append((drain ? 2 : 0.5, .advanceToNext))
        if !drain {
            choices.append((0.05, .advanceBig))
            choices.append((0.15, .operatorAction))
            choices.append((0.08, .changeFaults))
            for replica in replicas {
                if replica.gate.isDead {
                    choices.append((0.4, .restart(replica.index)))
                    continue
                }
                choices.append((0.04, .armCrash(replica.index)))
                choices.append((0.01, .kill(replica.index)))
                choices.append((0.01, .restart(replica.index)))
                choices.append(replica.paused ? (0.2, .unpause(replica.index)) : (0.01, .pause(replica.index)))
                choices.append((0.01, .stepClock(replica.index)))
            }
        }
        let total = choices.reduce(0) { $0 + $1.0 }
        var roll = rng.unit() * total
        var action = choices[choices.count - 1].1
        for (weight, candidate) in choices {
            roll -= weight
            if roll < 0 {
                action = candidate
                break
            }
        }
        try await perform(action)
        try await settle()
        if case .chain(let index, let kind) = action, !kernel.chainKinds(replica: index).contains(kind),
           worked.units.withLock({ $0["\(index):\(kind)"] }) == 0
        {
            idle.insert("\(index):\(kind)")
        } else {
            idle.removeAll()
        }
        await afterStep()
    }

    func perform(_ action: Action) async throws {
        switch action {
        case .chain(let index, let kind):
            guard let watcher = replicas[index].watcher else { return }
            log.count("step: \(kind.rawValue)")
            let worked = worked
            kernel.start(replica: index, kind: kind) {
                var units = 1
                switch kind {
                case .inbox: units = (try? await watcher.processInbox(limit: 1)) ?? 1
                case .polls: units = (try? await watcher.pollDue(limit: 1)) ?? 1
                case .analytics: units = (try? await watcher.runAnalytics(limit: 1)) ?? 1
                case .housekeeping:
                    let silent = await watcher.refreshSilence()
                    units = (try? await watcher.pruneIfDue()) ?? 1
                    _ = silent
                case .resume: try? await watcher.resume()
                }
                worked.units.withLock { $0["\(index):\(kind)"] = units }
            }
        case .arrive(let id):
            guard let call = kernel.calls.first(where: { $0.id == id }) else { return }
            let response = await simulation.handle(call.request)
            kernel.arrive(id, response)
            log.count("call: arrived, answer held")
            log.note(replica: call.replica, Self.book(of: call.request), "\(Self.describe(call.request)) reached Ocrolus: \(response.status)")
        case .answer(let id):
            guard let call = kernel.calls.first(where: { $0.id == id }) else { return }
            let response: IncomingResponse
            if let arrived = call.arrived {
                response = arrived
                log.count("call: late answer")
            } else {
                response = await simulation.handle(call.request)
                log.count("call: answered")
            }
            markAnswer(call, response)
            log.note(replica: call.replica, Self.book(of: call.request), "\(Self.describe(call.request)) answered \(response.status)"
                + (call.arrived != nil ? " (view from when it arrived)" : ""))
            kernel.finish(id, with: .success(response))
        case .timeOut(let id):
            guard let call = kernel.calls.first(where: { $0.id == id }) else { return }
            log.count("fault: call timed out\(call.arrived != nil ? " after reaching Ocrolus" : "")")
            log.note(replica: call.replica, Self.book(of: call.request), "\(Self.describe(call.request)) timed out")
            kernel.finish(id, with: .failure(ChaosNetworkError.timedOut))
        case .deliver(let index, let target, let loseAnswer):
            try await deliver(inFlight.remove(at: index), to: replicas[target], loseAnswer: loseAnswer)
        case .advanceSmall:
            try await advance(to: kernel.now.addingTimeInterval(rng.uniform(0.5...10)))
        case .advanceToNext:
            let next = try await nextDue()
            try await advance(to: max(next ?? kernel.now.addingTimeInterval(60), kernel.now.addingTimeInterval(0.5)))
        case .advanceBig:
            // The whole deployment frozen (a host suspended): nothing runs meanwhile, so no
            // liveness is owed for the jump.
            log.count("time: jump")
            let from = kernel.now
            try await advance(to: kernel.now.addingTimeInterval(rng.pick([300.0, 1800, 3 * 3600])))
            downtime.append((from, kernel.now))
        case .operatorAction:
            try await operatorAction()
        case .changeFaults:
            var faults = ChaosWorld.faults(&rng)
            if rng.chance(0.3) { faults.rateLimit = world.rate * Double(world.replicas) }
            log.count("fault: profile changed")
            log.note(replica: nil, nil, "faults now: drop \(faults.webhookDrop), 5xx \(faults.api5xx), 429 \(faults.api429), "
                + "bare 404 \(faults.bareNotFound), early VERIFIED \(faults.earlyVerified)")
            await simulation.setFaults(faults)
        case .armCrash(let index):
            let after = rng.chance(0.5)
            let calls = 1 + Int(rng.next() % 8)
            replicas[index].gate.arm(after: calls, afterCommit: after)
            log.count("fault: crash armed")
        case .kill(let index):
            log.count("fault: killed")
            log.note(replica: index, nil, "killed")
            replicas[index].gate.kill()
        case .restart(let index):
            log.count(replicas[index].gate.isDead ? "replica: restarted after death" : "replica: restarted")
            try await restart(replicas[index])
        case .pause(let index):
            log.count("fault: replica paused")
            log.note(replica: index, nil, "paused")
            replicas[index].paused = true
        case .unpause(let index):
            log.note(replica: index, nil, "resumed")
            replicas[index].paused = false
        case .stepClock(let index):
            let seconds = rng.pick([-600.0, -90, -30, -1, 1, 30, 90, 600])
            kernel.step(replica: index, by: seconds)
            if seconds > 0 { rateChecks[index]?.reset() }
            log.count("fault: clock stepped \(seconds > 0 ? "forward" : "back")")
            log.note(replica: index, nil, "clock stepped \(Int(seconds))s")
        }
    }

    /// Scenario markers an answer shows: a gateway's bare 404, a status answer whose question
    /// left before a webhook about its Book was applied.
    func markAnswer(_ call: ChaosKernel.Call, _ response: IncomingResponse) {
        if response.status == 404, response.header("Content-Type") == "text/html" { log.count("scenario 1: a bare 404 answered") }
        if Self.describe(call.request) == "status", let book = Self.book(of: call.request), let sent = callSeenAt[call.id],
           let webhook = log.lastWebhookStep(book), webhook > sent
        {
            log.count("scenario 2: a status answer in flight across a webhook")
        }
    }

    /// Moves time to `date` one wake-up at a time, settling after each, so chains woken at
    /// different moments never run side by side.
    func advance(to date: Date) async throws {
        log.count("time: advanced")
        while let next = kernel.nextWakeUp, next <= date {
            kernel.advance(to: next)
            try await settle()
        }
        kernel.advance(to: date)
    }

    /// The next moment anything is due: a sleeper, a webhook, a poll or a job, a Book's creation.
    func nextDue() async throws -> Date? {
        let creations = simulation.scenario.books.map { world.simulation.start.addingTimeInterval($0.createdAt) }.filter { $0 > kernel.now }
        let candidates: [Date?] = [
            kernel.nextWakeUp, await simulation.nextWebhookDueAt(), try await store.nextPollAt(), try await store.nextJobDueAt(), creations.min(),
        ]
        return candidates.compactMap { $0 }.min().map { min($0, kernel.now.addingTimeInterval(6 * 3600)) }
    }

    func deliver(_ delivery: WebhookDelivery, to replica: Replica, loseAnswer: Bool) async throws {
        // Signed as it leaves (a delivery held in flight is not one signed long ago).
        var delivery = delivery
        if let secret = world.simulation.webhookSecret, let requestID = delivery.headers.first(where: { $0.0 == "Webhook-Request-Id" })?.1 {
            let timestamp = String(Int(kernel.now.timeIntervalSince1970))
            delivery.headers.removeAll { $0.0 == "Webhook-Timestamp" || $0.0 == "Webhook-Signature" }
            delivery.headers += [
                ("Webhook-Timestamp", timestamp),
                ("Webhook-Signature", WebhookVerifier.sign(body: delivery.body, timestamp: timestamp, requestID: requestID, secret: secret)),
            ]
        }
        let book = delivery.bookIndex >= 0 ? simulation.scenario.books[delivery.bookIndex].uuid : nil
        var status: Int?
        if replica.up, let store = replica.store {
            let (code, _) = await SimulatedDeployment.receive(
                delivery, verifier: verifier, store: store, health: replica.health, now: kernel.now(replica: replica.index))
            status = replica.gate.isDead ? nil : code
            if status == 200, let requestID = delivery.headers.first(where: { $0.0 == "Webhook-Request-Id" })?.1 {
                if try await !self.store.inboxContains(requestID: requestID) {
                    pendingViolation = ChaosViolation(
                        invariant: "every delivery answered 200 is in the inbox", detail: "request \(requestID) is not", book: book)
                }
            }
        }
        log.count("webhook: \(status.map { "answered \($0)" } ?? "no answer")")
        if loseAnswer, status != nil {
            log.count("fault: webhook answer lost")
            status = nil
        }
        log.note(replica: replica.index, book, "webhook \(delivery.eventName.isEmpty ? "(thin body)" : delivery.eventName) "
            + "attempt \(delivery.attempt) -> \(status.map(String.init) ?? "no answer")")
        await simulation.recordAnswer(delivery, status: status)
    }

    var pendingViolation: ChaosViolation?

    func operatorAction() async throws {
        let books = simulation.scenario.books
        let book = books[Int(rng.next() % UInt64(books.count))]
        let uuid = book.uuid
        let now = kernel.now
        let input: BookInput
        switch rng.next() % 5 {
        case 0, 1: input = .command(.track(.operator))
        case 2: input = .command(.track(.created))
        case 3: input = .command(.untrack)
        default: input = .command(.retry)
        }
        log.count("operator: \(ChaosLog.label(input))")
        log.touchedStore()
        let outcome = try await store.apply(input, to: uuid, at: now, options: TransitionOptions())
        log.note(replica: nil, uuid, "operator \(ChaosLog.label(input)) -> \(outcome?.machine.phase.rawValue ?? "nothing")")
        switch input {
        case .command(.untrack): if outcome != nil { operatorUntracked.insert(uuid) }
        case .command(.track): operatorUntracked.remove(uuid)
        default: break
        }
    }

    /// After every step: new deliveries, the operator's `track --new` at creation, downtime.
    func afterStep() async {
        inFlight += await simulation.takeDueDeliveries()
        let books = simulation.scenario.books
        let now = kernel.now
        while creationsSeen < books.count {
            let created = books.sorted { $0.createdAt < $1.createdAt }[creationsSeen]
            guard world.simulation.start.addingTimeInterval(created.createdAt) <= now else { break }
            creationsSeen += 1
            if rng.chance(world.trackAtCreation) {
                log.count("operator: track --new at creation")
                log.touchedStore()
                let outcome = try? await store.apply(.command(.track(.created)), to: created.uuid, at: now, options: TransitionOptions())
                log.note(replica: nil, created.uuid, "operator track --new -> \(outcome?.machine.phase.rawValue ?? "nothing")")
                operatorUntracked.remove(created.uuid)
            }
        }
        let down = replicas.allSatisfy { !$0.up }
        if down, downSince == nil { downSince = now }
        if !down, let since = downSince {
            downtime.append((since, now))
            downSince = nil
        }
    }

    // MARK: invariants

    func checkSafety() async throws -> ChaosViolation? {
        if let pending = pendingViolation { return pending }
        let now = kernel.now
        // The rate limit: every call a replica sent, in Ocrolus's time, conforms to its limiter.
        for call in kernel.takeSent() {
            callSeenAt[call.id] = step
            log.count("call: sent")
            if rateChecks[call.replica]?.admit(call.sentAt.timeIntervalSince(world.simulation.start)) == false {
                return ChaosViolation(
                    invariant: "the rate limit is never exceeded",
                    detail: "r\(call.replica) sent \(Self.describe(call.request)) at \(log.stamp(call.sentAt)) beyond \(world.rate)/s burst \(Int(world.burst))",
                    book: Self.book(of: call.request))
            }
        }
        let storeCalls = log.storeCalls
        guard storeCalls != checkedAtStoreCalls else { return nil }
        checkedAtStoreCalls = storeCalls
        let records = try await store.books(state: nil, limit: nil)
        let slack = world.schedule.maximum + world.lease + replicas.map { abs(kernel.offset(replica: $0.index)) }.max()! + 5
        for record in records {
            let uuid = record.uuid
            if everTracked[uuid] == nil { everTracked[uuid] = now }
            if operatorUntracked.contains(uuid) {
                return ChaosViolation(invariant: "an untracked Book stays untracked", detail: "\(uuid) is tracked again (\(record.machine.phase.rawValue))", book: uuid)
            }
            if record.machine.phase == .deleted {
                let truth = simulation.scenario.books.first { $0.uuid == uuid }
                let t = now.timeIntervalSince(world.simulation.start)
                if truth.map({ !$0.isDeleted(at: t) }) ?? false {
                    return ChaosViolation(invariant: "a Book marked deleted is deleted at Ocrolus", detail: "\(uuid) is not deleted at Ocrolus", book: uuid)
                }
            }
            // Not forgotten: a Book still processing is polled within the maximum; one retrieving
            // has its job running or due within the retry cap (its polls only watch for a reopen,
            // which the job's view after catches), or a poll due.
            let pollDue = record.nextPollAt.map { $0 <= now.addingTimeInterval(slack) } ?? false
            if [.tracking, .processing].contains(record.machine.phase), !pollDue {
                return ChaosViolation(
                    invariant: "a tracked, unfinished Book has a poll due within the maximum",
                    detail: "\(uuid) is \(record.machine.phase.rawValue) with its next poll \(record.nextPollAt.map(log.stamp) ?? "never")", book: uuid)
            }
            if record.machine.phase == .retrieving, !pollDue {
                let cap = WatcherConfiguration().analyticsRetry.cap + slack
                let jobDue = record.analytics.map { job in
                    job.generation == record.machine.generation
                        && (job.state == .running || (job.state == .pending && (job.dueAt.map { $0 <= now.addingTimeInterval(cap) } ?? false)))
                } ?? false
                if !jobDue {
                    return ChaosViolation(
                        invariant: "a retrieving Book has its job or a poll due",
                        detail: "\(uuid) job \(record.analytics.map { "\($0.generation) \($0.state.rawValue) due \($0.dueAt.map(log.stamp) ?? "never")" } ?? "none"), "
                            + "next poll \(record.nextPollAt.map(log.stamp) ?? "never")", book: uuid)
                }
            }
        }
        for uuid in operatorUntracked where try await !store.isUntracked(uuid) {
            return ChaosViolation(invariant: "an untracked Book stays untracked", detail: "\(uuid) lost its tombstone", book: uuid)
        }
        // At most one analytics 200 per (Book, Ocrolus generation, endpoint) stored.
        let counts = try await store.analyticsCounts()
        let supersessions = log.counts["scenario 2: a reopen superseded a job"] ?? 0
        if counts.results != resultCount || supersessions != checkedSupersessions {
            resultCount = counts.results
            checkedSupersessions = supersessions
            for book in simulation.scenario.books {
                var seen: Set<String> = []
                for result in try await store.analyticsResults(for: book.uuid, endpoint: nil) {
                    let key = "generation \(Self.ocrolusGeneration(result.body) ?? -1) of \(result.endpoint)"
                    if !seen.insert(key).inserted {
                        return ChaosViolation(
                            invariant: "at most one analytics 200 per (Book, generation, endpoint) stored",
                            detail: "\(book.uuid): Ocrolus's \(key) stored twice (bookwatch generations \(result.generation) and another)", book: book.uuid)
                    }
                }
            }
        }
        return nil
    }

    /// After the drain: every generation that stayed finished long enough is retrieved, or its
    /// supersession is recorded; nil when all is well.
    func checkLiveness() async throws -> ChaosViolation? {
        let window = 4 * world.schedule.maximum + world.lease + 600
        for book in simulation.scenario.books where !operatorUntracked.contains(book.uuid) && book.deletedAt == nil {
            guard let since = everTracked[book.uuid] else { continue }
            guard let record = try await store.book(book.uuid) else {
                return ChaosViolation(invariant: "a tracked Book is never forgotten", detail: "\(book.uuid) vanished", book: book.uuid)
            }
            let retrieved = Set(try await store.analyticsResults(for: book.uuid, endpoint: nil).map {
                "\(Self.ocrolusGeneration($0.body) ?? -1):\($0.endpoint)"
            })
            let jobs = try await store.jobHistory(book.uuid)
            var excused = jobs.filter { $0.state == "superseded" }.count
            let t = kernel.now.timeIntervalSince(world.simulation.start)
            for (offset, generation) in book.generations.enumerated() where generation.analyticsReadyAt <= t {
                let number = offset + 1
                let complete = world.endpoints.allSatisfy { retrieved.contains("\(number):\($0.rawValue)") }
                if complete { continue }
                let isLast = number == book.generations.count
                if !isLast {
                    // Owed only when it stayed ready long enough while tracked and served.
                    let end = book.documents.map(\.uploadAt).filter { $0 > generation.verifiedAt }.min() ?? t
                    let start = max(generation.analyticsReadyAt, since.timeIntervalSince(world.simulation.start))
                    if served(from: start, to: end) < window { continue }
                    // Each owed generation not retrieved needs a supersession of its own.
                    if excused > 0 {
                        excused -= 1
                        continue
                    }
                }
                let phase = record.machine.phase.rawValue
                let reason = record.machine.failureReason.map { " (\($0))" } ?? ""
                return ChaosViolation(
                    invariant: "every generation finished long enough is retrieved or superseded",
                    detail: "\(book.uuid) generation \(number) of \(book.generations.count) ready since \(Int(generation.analyticsReadyAt))s, "
                        + "not retrieved; bookwatch: \(phase)\(reason), jobs \(jobs.map { "\($0.generation):\($0.state)" })",
                    book: book.uuid)
            }
        }
        return nil
    }

    /// Seconds of [start, end] (from the run's start) with some replica up.
    func served(from start: Double, to end: Double) -> Double {
        guard end > start else { return 0 }
        let origin = world.simulation.start
        let down = (downtime + (downSince.map { [($0, kernel.now)] } ?? [])).reduce(0.0) { total, interval in
            let a = max(start, interval.0.timeIntervalSince(origin)), b = min(end, interval.1.timeIntervalSince(origin))
            return total + max(0, b - a)
        }
        return end - start - down
    }

    // MARK: helpers

    static func book(of request: OutgoingRequest) -> BookUUID? {
        guard let components = URLComponents(string: request.url) else { return nil }
        if let uuid = components.queryItems?.first(where: { $0.name == "book_uuid" })?.value { return BookUUID(uuid) }
        return components.path.split(separator: "/").lazy.compactMap { BookUUID(String($0)) }.first
    }

    static func describe(_ request: OutgoingRequest) -> String {
        guard let components = URLComponents(string: request.url) else { return request.url }
        if components.path.hasSuffix("/oauth/token") { return "token" }
        if components.path == "/v1/book/status" { return components.query?.hasPrefix("pk=") == true ? "status by pk" : "status" }
        return components.path.split(separator: "/").last.map { "analytics \($0)" } ?? components.path
    }

    static func ocrolusGeneration(_ body: [UInt8]) -> Int? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        let response = object["response"] as? [String: Any] ?? object
        return response["generation"] as? Int
    }
}

/// What each replica's chains did last (units of work), by "replica:kind".
final class ChainResults: Sendable {
    let units = Mutex<[String: Int]>([:])
}

/// GCRA conformance in Ocrolus's time: the calls one limiter let out (reset on a forward clock
/// step, which refills a bucket legitimately once).
struct GCRACheck {
    let rate: Double
    let burst: Double
    var tat: Double?

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    mutating func reset() { tat = nil }

    mutating func admit(_ t: Double) -> Bool {
        let interval = 1 / rate
        let current = tat ?? t
        if t < current - (burst - 1) * interval - 1e-3 { return false }
        tat = max(current, t) + interval
        return true
    }
}
