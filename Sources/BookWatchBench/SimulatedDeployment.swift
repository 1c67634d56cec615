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

/// bookwatch wired to the in-process simulator: webhooks go from the simulator's sender through
/// `WebhookAdmission` and the group-commit `InboxWriter` into the inbox, as the HTTP route's do
/// (only the socket is missing); API calls go through the in-process transport. `demo` runs it on a sped-up clock; end-to-end tests on a manual one.
public final class SimulatedDeployment: Sendable {
    /// The virtual clock everything runs on.
    public let clock: any WallClock
    /// The fake Ocrolus, with its ground truth.
    public let simulation: OcrolusSimulation
    /// The SQLite store the watcher writes.
    public let store: SQLiteBookStore
    /// The watcher under test.
    public let watcher: Watcher
    /// The client the watcher calls Ocrolus with (in-process transport).
    public let client: OcrolusClient
    /// The client's transport (its `arriving` requests hold the virtual clock).
    public let transport: SimulatorTransport
    /// Sends the simulation's webhooks through the admission path.
    public let sender: WebhookSender
    /// The service health the admission reports into.
    public let health: ServiceHealth
    /// The group commit every delivery goes through (its `batches` count the transactions).
    public let writer: InboxWriter
    /// Recorded exactly as `serve` records them (the end-to-end tests read them back).
    public let metrics = BookWatchMetrics()

    /// A deployment in one process: simulator, store, watcher and webhook path on one virtual clock.
    public init(
        simulation config: SimulationConfig,
        clock: any WallClock,
        databasePath: String,
        watcher watcherConfig: WatcherConfiguration,
        pollSchedule: PollSchedule = PollSchedule(),
        rate: Double = 5,
        burst: Double = 25,
        logger: Logger
    ) throws {
        self.clock = clock
        // Signed like a real deployment: only authenticated deliveries may stand in for a status
        // call, so an unsigned simulation would measure a deployment nobody should run.
        var config = config
        if config.webhookSecret == nil { config.webhookSecret = Self.defaultWebhookSecret }
        simulation = OcrolusSimulation(config: config, clock: clock)
        // The schedule's and the watcher's jitter come from the scenario's seed, so a run repeats
        // (up to the order in which concurrent polls draw).
        let jitter = Mutex(SeededRandom(seed: config.seed &+ 0x6A09_E667))
        let random: @Sendable () -> Double = { jitter.withLock { $0.unit() } }
        store = try SQLiteBookStore(path: databasePath, schedule: pollSchedule, random: random)
        health = ServiceHealth(startedAt: clock.now())
        let metrics = metrics
        transport = SimulatorTransport(simulation: simulation)
        client = Self.client(
            of: transport,
            clock: clock,
            rate: rate,
            burst: burst,
            logger: logger,
            observe: { metrics.ocrolusRequest($0) }
        )
        var watcherConfig = watcherConfig
        // The deployment's rate, as `serve` passes BOOKWATCH_RATE_LIMIT (unless the caller set one).
        if watcherConfig.requestRate == nil { watcherConfig.requestRate = rate }
        watcher = Watcher(
            store: store,
            client: client,
            clock: clock,
            configuration: watcherConfig,
            health: health,
            logger: logger,
            metrics: metrics,
            random: random
        )
        let admission = WebhookAdmission(verifier: try config.webhookSecret.map { try WebhookVerifier(secrets: [$0]) })
        let writer = InboxWriter(store: store, health: health, logger: logger)
        self.writer = writer
        // The writer's loop lives as long as the deployment (closed in deinit, which ends it).
        Task { try? await writer.run() }
        let health = health
        sender = WebhookSender(
            simulation: simulation,
            target: ClosureWebhookTarget { delivery in
                let answer = await admission.receive(headers: delivery.headers, body: delivery.body, peer: nil, now: clock.now(), health: health) {
                    try await writer.append($0)
                }
                metrics.webhookAnswered(answer.outcome, seconds: 0)
                return answer.status
            }
        )
    }

    deinit { writer.close() }

    /// The webhook secret of a simulated deployment given none.
    public static let defaultWebhookSecret = "whsec-simulated-deployment-0123456789"

    /// A client of the in-process simulator with its own limiter.
    static func client(
        of transport: SimulatorTransport,
        clock: any WallClock,
        rate: Double,
        burst: Double,
        logger: Logger,
        observe: @escaping @Sendable (RequestRecord) -> Void = { _ in }
    ) -> OcrolusClient {
        OcrolusClient(
            configuration: OcrolusConfiguration(
                apiBaseURL: "http://simulator",
                tokenURL: "http://simulator/oauth/token",
                credentials: .init(clientID: "demo", clientSecret: "demo-secret-0123456789")
            ),
            transport: transport,
            limiter: RateLimiter(rate: rate, burst: burst, clock: clock),
            clock: clock,
            logger: logger,
            observe: observe
        )
    }

    /// Runs rounds on a manual clock until the scenario is settled or `deadline` passes, jumping
    /// time to whatever is due next. `beforeRound` does the caller's own work first (e.g. tracking
    /// Books as they are created) and returns when it next needs to run (nil: nothing pending,
    /// and only then can the run be settled).
    public func run(on clock: ManualClock, until deadline: Date, beforeRound: () async throws -> Date? = { nil }) async throws {
        while clock.now() < deadline {
            let pending = try await beforeRound()
            let activity = store.activity
            let writer = writer
            let transport = transport
            let limiter = client.limiter
            // A delivery waiting in the group commit's queue is work too, and so are a request on
            // its way to the simulation and a limiter waiter woken to take its turn: time stands
            // still for them.
            try await VirtualTime.drive(
                clock,
                busy: { activity.isBusy || writer.queuedCount > 0 || transport.arriving > 0 || limiter.handoffsInFlight > 0 },
                { try await self.step() }
            )
            if pending == nil, try await settled() { return }
            let next = [try await nextDue(), pending].compactMap { $0 }.min() ?? clock.now().addingTimeInterval(60)
            clock.advance(to: max(next, clock.now().addingTimeInterval(1)))
        }
    }

    /// What the HTTP route does, without HTTP (`WebhookAdmission`): verify, decode, store
    /// durably, answer.
    static func receive(
        _ delivery: WebhookDelivery,
        verifier: WebhookVerifier?,
        store: any BookStore,
        health: ServiceHealth,
        now: Date
    ) async -> (Int, WebhookOutcome) {
        let answer = await WebhookAdmission(verifier: verifier).receive(
            headers: delivery.headers,
            body: delivery.body,
            peer: nil,
            now: now,
            health: health
        ) { try await store.appendToInbox($0) }
        return (answer.status, answer.outcome)
    }

    /// One round: deliver due webhooks and process the inbox, then poll what is due; while the
    /// polls are out (a backlog of them can take many seconds of the limiter), jobs are worked and
    /// webhooks delivered and applied every `tick`, as `serve`'s independent loops do, so neither
    /// a retrieval nor a hint waits for the round's last poll.
    public func step() async throws {
        await sender.deliverDue()
        try await watcher.processInbox()
        let watcher = watcher
        let sender = sender
        let clock = clock
        // Loops stop by a flag when the polls are done, not by cancellation: a cancelled inbox
        // round would leave its claimed rows for their lease, which no deployment does. (An error
        // ends the round at once, cancelling them: the run ends with it anyway.)
        let pollsDone = Watcher.RoundFlag()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { pollsDone.set() }
                try await watcher.pollDue()
            }
            group.addTask {
                try await Self.repeatEveryTick(until: pollsDone, clock: clock) { _ = try await watcher.runAnalytics() }
            }
            group.addTask {
                try await Self.repeatEveryTick(until: pollsDone, clock: clock, skipFirst: true) {
                    await sender.deliverDue()
                    _ = try? await watcher.processInbox()
                }
            }
            try await group.waitForAll()
        }
    }

    /// Runs `body`, then again every `tick` until `stop` is set (checked after each run).
    static func repeatEveryTick(
        until stop: Watcher.RoundFlag,
        clock: any WallClock,
        skipFirst: Bool = false,
        _ body: @Sendable () async throws -> Void
    ) async throws {
        var first = true
        while true {
            if !(first && skipFirst) { try await body() }
            first = false
            if stop.isSet { return }
            try await clock.sleep(for: tick)
        }
    }

    /// How often webhooks due during a round are delivered (`serve`'s loop tick).
    static let tick: TimeInterval = 1

    /// The next moment anything is due (webhook, poll, job), if anything is.
    public func nextDue() async throws -> Date? {
        let candidates = [await simulation.nextWebhookDueAt(), try await store.nextPollAt(), try await store.nextJobDueAt()]
        return candidates.compactMap { $0 }.min()
    }

    /// Whether every finished generation of the scenario is retrieved or ended (`failed`/`deleted`).
    public func settled() async throws -> Bool {
        guard clock.now() >= simulation.settledAt else { return false }
        let counts = try await store.analyticsCounts()
        let open = (counts.jobs["pending"] ?? 0) + (counts.jobs["running"] ?? 0)
        guard open == 0 else { return false }
        // Every tracked Book has come to rest (a deletion is noticed by a poll, not by a webhook).
        let totals = try await store.totals()
        guard (totals[.tracking] ?? 0) + (totals[.processing] ?? 0) + (totals[.retrieving] ?? 0) == 0 else { return false }
        let stats = await simulation.stats()
        // Deleted Books may end without analytics; a generation superseded by a reopen before its
        // analytics could be fetched never will be: without discounting both, the run would wait
        // for its deadline.
        let kept = stats.truth.filter { $0.deletedAt == nil }
        let endpoints = watcher.configuration.analytics.count
        let expected = kept.reduce(0) { $0 + $1.finishedGenerations } * endpoints
        let retrieved = stats.analyticsOKByKey.keys.filter { key in kept.contains { key.hasPrefix($0.uuid) } }.count
        let superseded = (counts.jobs["superseded"] ?? 0) * endpoints
        return retrieved + superseded >= expected
    }
}
