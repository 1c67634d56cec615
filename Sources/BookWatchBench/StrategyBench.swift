import BookWatchClocks
import BookWatchCore
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import OcrolusSimulator
import Synchronization

/// The three designs compared by `bookwatch bench strategies`, on the same seeded scenario and
/// the simulator's virtual clock.
public enum Strategy: String, CaseIterable, Sendable {
    /// bookwatch: webhooks as hints, adaptive polling, exactly-once analytics.
    case hybrid
    /// bookwatch with `BOOKWATCH_WEBHOOK_TRUST=never`: every finish confirmed by a status call and
    /// finished Books polled every maximum, however reliable webhooks prove (the baseline of trust).
    case hybridStrict = "hybrid-strict"
    /// bookwatch without outage detection (`WatcherConfiguration.detectOutages` off): webhooks
    /// count as silent only after an hour without any (the baseline of issue 18's detection).
    case hybridHour = "hybrid-hour"
    /// Every Book's status every 30 s (same limiter, same analytics step), no webhooks.
    case naive
    /// No polling: trusts `book.verified`/`BOOK_VERIFIED` and fetches analytics when it arrives.
    case webhookOnly = "webhook-only"
}

/// The world a strategy runs in beyond webhook loss: the watcher's poll interval and the API's
/// faults. `standard` is docs/benchmarks.md's table; the others are the adversary's runs of the
/// issue "Nothing doubled, nothing lost".
public struct StrategyWorld: Sendable, Equatable {
    /// The name `--world` takes.
    public var name = "standard"
    /// The watcher's poll minimum.
    public var pollMinimum: TimeInterval = 60
    /// The watcher's poll maximum.
    public var pollMaximum: TimeInterval = 1800
    /// Fraction of API answers replaced by 5xx.
    public var api5xx = 0.0
    /// Fraction of API answers replaced by a gateway's bare 404.
    public var bareNotFound = 0.0
    /// Answers leave up to this many seconds after the view they carry was taken.
    public var answerDelay: TimeInterval = 0
    /// Only status answers are late (analytics answer at once).
    public var answerDelayStatusOnly = false
    /// Seconds from VERIFIED to analytics ready (425 before).
    public var analyticsDelay: ClosedRange<Double> = 5...30

    /// The table of docs/benchmarks.md: no faults.
    public static let standard = StrategyWorld()
    /// Polls every 1-5 s, 10% of answers 5xx, 5% bare 404s, analytics ready up to two minutes
    /// after VERIFIED: retrievals must not wait behind their own confirmation, nor a 404 delete a Book.
    public static let adversary = StrategyWorld(
        name: "adversary",
        pollMinimum: 1,
        pollMaximum: 5,
        api5xx: 0.1,
        bareNotFound: 0.05,
        analyticsDelay: 5...120
    )
    /// Status answers 0-8 s late (the run), analytics ready up to two minutes after VERIFIED.
    public static let slowAnswers = StrategyWorld(
        name: "slow-answers",
        answerDelay: 8,
        answerDelayStatusOnly: true,
        analyticsDelay: 5...120
    )
    /// Every answer 0-8 s late, analytics too.
    public static let allSlow = StrategyWorld(name: "all-slow", answerDelay: 8, analyticsDelay: 5...120)
    /// Every world, in the order `--world all` runs them.
    public static let all = [standard, adversary, slowAnswers, allSlow]
}

/// One strategy on one scenario, from the simulator's own counters.
public struct StrategyResult: Sendable {
    /// Which design ran.
    public var strategy: Strategy
    /// The fraction of webhooks lost.
    public var webhookLoss: Double
    /// Books in the scenario.
    public var books: Int
    /// Books whose finished generation had its analytics stored.
    public var completed: Int
    /// Analytics 200s the simulator served, and how many of them repeated a (Book, generation).
    public var retrievals: Int
    /// Of those, repeats of a (Book, generation): must be 0.
    public var duplicates: Int
    /// Status calls made.
    public var statusCalls: Int
    /// From the moment the simulator made the Book finished to analytics stored (seconds).
    public var delayP50: Double?
    /// The 99th percentile of the same delay.
    public var delayP99: Double?
    /// Answers the simulator's rate limiter refused with 429.
    public var answers429: Int
    /// Virtual time the scenario took.
    public var virtualHours: Double
    /// Real time the run took.
    public var wallSeconds: Double
    /// Status calls by why they were made (the watcher strategies).
    public var pollsByReason: [String: Int] = [:]
    /// Of `statusCalls`, those answered while the Book was finished (the simulator's count).
    public var statusCallsWhileFinished: Int = 0
    /// From the moment the simulator made analytics ready (425 before) to analytics stored.
    public var readyDelayP50: Double?
    /// The 95th percentile of the same delay.
    public var readyDelayP95: Double?
    /// With loss starting mid-run: the Books that finished after it started, and their delays.
    public var sinceLoss: (books: Int, p50: Double?, p99: Double?)? = nil
    /// Of those Books: from the finish to the first status answer showing it (p50, p99), and
    /// from that answer to analytics stored (p50, p99).
    public var sinceLossSplit: (seenP50: Double?, seenP99: Double?, storedP50: Double?, storedP99: Double?)? = nil

    /// Status calls per Book.
    public var statusCallsPerBook: Double { Double(statusCalls) / Double(max(books, 1)) }
}

/// Runs the strategy comparison of docs/benchmarks.md.
public enum StrategyBench {
    /// The shared scenario: `books` Books, each finishing once (no reopen or delete, so
    /// "completed" is unambiguous), webhooks lost with probability `loss`, and an enforced
    /// organisation limit of `rate` requests/s (the simulator answers 429 above it).
    public static func scenario(
        books: Int,
        loss: Double,
        seed: UInt64,
        rate: Double,
        lossFrom: TimeInterval = 0,
        world: StrategyWorld = .standard
    ) -> SimulationConfig {
        var config = SimulationConfig()
        config.books = books
        config.seed = seed
        config.flavour = .org
        config.reopenFraction = 0
        config.deleteFraction = 0
        config.bookSpread = 3600
        config.processingTime = 60...1800
        // Analytics ready soon after VERIFIED, so the delay measures detection more than readiness.
        config.analyticsDelay = world.analyticsDelay
        config.faults.api5xx = world.api5xx
        config.faults.bareNotFound = world.bareNotFound
        config.faults.answerDelay = world.answerDelay
        config.faults.answerDelayStatusOnly = world.answerDelayStatusOnly
        config.faults.webhookDrop = loss
        config.faults.webhookDropFrom = lossFrom
        config.faults.rateLimit = rate
        config.faults.rateBurst = 25
        return config
    }

    /// - Parameters:
    ///   - lossFrom: loss starts this many seconds into the scenario (0: from the start).
    ///   - world: poll interval and API faults (`StrategyWorld`).
    public static func run(
        _ strategy: Strategy,
        books: Int,
        loss: Double,
        seed: UInt64 = 1,
        rate: Double = 5,
        lossFrom: TimeInterval = 0,
        world: StrategyWorld = .standard
    ) async throws -> StrategyResult {
        let config = scenario(books: books, loss: loss, seed: seed, rate: rate, lossFrom: lossFrom, world: world)
        let clock = ManualClock(start: config.start)
        let wallStart = ContinuousClock.now
        let stored: [String: Date]
        let simulation: OcrolusSimulation
        var reasons: [String: Int] = [:]
        switch strategy {
        case .hybrid, .hybridStrict, .hybridHour, .naive:
            let watcherStats: WatcherStats
            (simulation, stored, watcherStats) = try await runWatcher(strategy, config: config, clock: clock, rate: rate, world: world)
            reasons = Dictionary(uniqueKeysWithValues: watcherStats.polls.map { ($0.key.rawValue, $0.value) })
        case .webhookOnly:
            (simulation, stored) = try await runWebhookOnly(config: config, clock: clock, rate: rate)
        }
        let stats = await simulation.stats()
        var delays: [Double] = []
        var delaysSinceLoss: [Double] = []
        var readyDelays: [Double] = []
        var seenSinceLoss: [Double] = []
        var storedAfterSeen: [Double] = []
        let lossStart = config.start.addingTimeInterval(lossFrom)
        for truth in stats.truth {
            guard let first = truth.verifiedAt.first, let finished = try? Date(first, strategy: .iso8601), let at = stored[truth.uuid]
            else { continue }
            delays.append(at.timeIntervalSince(finished))
            if let text = truth.analyticsReadyAt.first, let ready = try? Date(text, strategy: .iso8601) {
                readyDelays.append(max(0, at.timeIntervalSince(ready)))
            }
            if lossFrom > 0 && finished >= lossStart {
                delaysSinceLoss.append(at.timeIntervalSince(finished))
                if let text = stats.firstSeenFinished[truth.uuid], let seen = try? Date(text, strategy: .iso8601) {
                    seenSinceLoss.append(seen.timeIntervalSince(finished))
                    storedAfterSeen.append(at.timeIntervalSince(seen))
                }
            }
        }
        func quantile(_ q: Double, of values: [Double] = delays) -> Double? {
            let sorted = values.sorted()
            return sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.up)) - 1)]
        }
        let elapsed = ContinuousClock.now - wallStart
        return StrategyResult(
            strategy: strategy,
            webhookLoss: loss,
            books: books,
            completed: stored.count,
            retrievals: stats.analyticsOKByKey.values.reduce(0, +),
            duplicates: stats.analyticsOKByKey.values.reduce(0) { $0 + max(0, $1 - 1) },
            statusCalls: stats.statusCalls,
            delayP50: quantile(0.5),
            delayP99: quantile(0.99),
            answers429: stats.answers429,
            virtualHours: clock.now().timeIntervalSince(config.start) / 3600,
            wallSeconds: elapsed.inSeconds,
            pollsByReason: reasons,
            statusCallsWhileFinished: stats.statusCallsWhileFinished,
            readyDelayP50: quantile(0.5, of: readyDelays),
            readyDelayP95: quantile(0.95, of: readyDelays),
            sinceLoss: lossFrom > 0 ? (delaysSinceLoss.count, quantile(0.5, of: delaysSinceLoss), quantile(0.99, of: delaysSinceLoss)) : nil,
            sinceLossSplit: seenSinceLoss.isEmpty
                ? nil
                : (
                    quantile(0.5, of: seenSinceLoss), quantile(0.99, of: seenSinceLoss), quantile(0.5, of: storedAfterSeen),
                    quantile(0.99, of: storedAfterSeen)
                )
        )
    }

    /// Silent unless `BOOKWATCH_BENCH_LOG` names a level; lines are stamped with the virtual clock.
    static func quietLogger(_ clock: ManualClock) -> Logger {
        let level = ProcessInfo.processInfo.environment["BOOKWATCH_BENCH_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return Logger(label: "bench") { label in LineLogHandler(label: label, format: .text, level: level, now: { clock.now() }) }
    }

    /// hybrid and naive: the real watcher. The lender tracks each Book when it creates it
    /// (`bookwatch track --new`: no call is spent on an empty Book).
    static func runWatcher(
        _ strategy: Strategy,
        config: SimulationConfig,
        clock: ManualClock,
        rate: Double,
        world: StrategyWorld
    ) async throws
        -> (OcrolusSimulation, [String: Date], WatcherStats)
    {
        var config = config
        let schedule: PollSchedule
        if strategy == .naive {
            config.webhooksEnabled = false
            schedule = PollSchedule(minimum: 30, maximum: 30, retention: nil)
        } else {
            schedule = PollSchedule(minimum: world.pollMinimum, maximum: world.pollMaximum)
        }
        // On tmpfs when there is one: the figures are about calls and delays, not fsync.
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? URL(fileURLWithPath: "/dev/shm") : FileManager.default.temporaryDirectory
        let directory = base.appendingPathComponent("bookwatch-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var watcher = WatcherConfiguration()
        watcher.trustWebhooks = strategy == .hybrid || strategy == .hybridHour
        watcher.detectOutages = strategy != .hybridHour
        let deployment = try SimulatedDeployment(
            simulation: config,
            clock: clock,
            databasePath: directory.appendingPathComponent("bench.sqlite").path,
            watcher: watcher,
            pollSchedule: schedule,
            rate: rate,
            burst: 25,
            logger: quietLogger(clock)
        )
        var creations = deployment.simulation.scenario.books
            .map { (at: config.start.addingTimeInterval($0.createdAt), uuid: $0.uuid) }
            .sorted { $0.at < $1.at }[...]
        try await deployment.run(on: clock, until: deployment.simulation.settledAt.addingTimeInterval(12 * 3600)) {
            while let first = creations.first, first.at <= clock.now() {
                _ = try await deployment.store.apply(.command(.track(.created)), to: first.uuid, at: clock.now(), options: .init())
                creations = creations.dropFirst()
            }
            return creations.first?.at
        }
        var stored: [String: Date] = [:]
        for book in deployment.simulation.scenario.books {
            if let result = try await deployment.store.analyticsResults(for: book.uuid, endpoint: "summary").first {
                stored[book.uuid.rawValue] = result.retrievedAt
            }
        }
        try deployment.store.close()
        return (deployment.simulation, stored, deployment.watcher.stats)
    }

    /// webhook-only: a handler that fetches analytics when `book.verified` arrives (deduplicated
    /// by Book), retrying 425 and errors; it never asks for a status.
    static func runWebhookOnly(
        config: SimulationConfig,
        clock: ManualClock,
        rate: Double
    ) async throws
        -> (OcrolusSimulation, [String: Date])
    {
        let simulation = OcrolusSimulation(config: config, clock: clock)
        let transport = SimulatorTransport(simulation: simulation)
        let client = SimulatedDeployment.client(of: transport, clock: clock, rate: rate, burst: 25, logger: quietLogger(clock))
        struct State {
            var queue: [(uuid: BookUUID, due: Date)] = []
            var seen: Set<BookUUID> = []
            var stored: [String: Date] = [:]
        }
        let state = Mutex(State())
        let sender = WebhookSender(
            simulation: simulation,
            target: ClosureWebhookTarget { delivery in
                if let decoded = try? DecodedWebhook.decode(delivery.body), decoded.hint.suggestsBookFinished,
                    let uuid = decoded.bookUUID
                {
                    state.withLock { state in
                        if state.seen.insert(uuid).inserted { state.queue.append((uuid, clock.now())) }
                    }
                }
                return 200
            }
        )
        let deadline = simulation.settledAt.addingTimeInterval(12 * 3600)
        while clock.now() < deadline {
            let limiter = client.limiter
            let arriving: @Sendable () -> Bool = { transport.arriving > 0 || limiter.handoffsInFlight > 0 }
            try await VirtualTime.drive(clock, busy: arriving) {
                await sender.deliverDue()
                let now = clock.now()
                let due = state.withLock { state -> [BookUUID] in
                    let due = state.queue.filter { $0.due <= now }.map(\.uuid)
                    state.queue.removeAll { $0.due <= now }
                    return due
                }
                for uuid in due {
                    var retryAt: Date?
                    do {
                        switch try await client.analytics(uuid: uuid, endpoint: .summary, priority: .urgent) {
                        case .ready: state.withLock { $0.stored[uuid.rawValue] = clock.now() }
                        case .notReady(let after): retryAt = clock.now().addingTimeInterval(max(after ?? 30, 1))
                        }
                    } catch {
                        retryAt = clock.now().addingTimeInterval(30)
                    }
                    if let retryAt { state.withLock { $0.queue.append((uuid, retryAt)) } }
                }
            }
            let queued = state.withLock { $0.queue.map(\.due).min() }
            let webhook = await simulation.nextWebhookDueAt()
            guard let next = [queued, webhook].compactMap({ $0 }).min() else {
                if clock.now() >= simulation.settledAt { break }
                clock.advance(to: simulation.settledAt)
                continue
            }
            clock.advance(to: max(next, clock.now().addingTimeInterval(1)))
        }
        return (simulation, state.withLock { $0.stored })
    }
}
