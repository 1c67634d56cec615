import BookWatchClocks
import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import Synchronization

/// The heart of bookwatch: turns inbox deliveries into hints, polls what is due, and retrieves
/// analytics for finished generations exactly once. Each step is a method that does the work due
/// now and returns, so the service loops and the virtual-time tests drive the same code.
public final class Watcher: Sendable {
    let store: any BookStore
    let client: any OcrolusAPIClient
    let clock: any WallClock
    /// How it works.
    public let configuration: WatcherConfiguration
    let health: ServiceHealth
    let logger: Logger
    let random: @Sendable () -> Double
    /// Where it records.
    public let metrics: BookWatchMetrics
    /// Everything the watcher's loops share, under one lock (each access is short and never
    /// awaits).
    let state = Mutex(State())

    struct State {
        /// Books whose status call is in flight from this process.
        var inFlight: Set<BookUUID> = []
        var counters = WatcherStats()
        /// No webhook for longer than `webhookSilence`, or none for many expected gaps while Books
        /// are processing (`arrivals`).
        var silent = false
        /// The deployment's webhook arrivals per processing Book (outage detection).
        var arrivals = WebhookArrivals()
        /// No webhook for longer than `webhookSilence` (finished Books' polls come in too).
        var longSilent = false
        var loss = WebhookLossEstimate()
        var lastPruned: Date?
        /// Book uuids learned by a status call by pk (a pk names one Book for good), so pk-only
        /// deliveries about a Book not tracked here cost one call, not one each (at most
        /// `pkCacheCapacity`, then forgotten at once).
        var uuidsByPK: [Int: BookUUID] = [:]
        /// The last count of finished Books with a retention poll (it changes slowly: kept
        /// whatever its age, so a stale reading never falls back to polling them every maximum).
        var finishedPolled: Int?
        /// The deployment's last webhook and when the shared measurements were last read.
        var shared = SharedView()
        /// When `tightenTracking` last looked for first polls set as if webhooks were trusted.
        var trackingTightenedAt: Date?
    }

    struct SharedView {
        var lastWebhookAt: Date?
        var readAt: Date?
    }

    /// Keys of `BookStore.sharedState`.
    static let lossKey = "webhook_loss_estimate"
    static let lastWebhookKey = "last_webhook_at"
    /// How often a replica reads what the others measured.
    static let sharedRefresh: TimeInterval = 30

    /// A watcher of `store`, calling Ocrolus through `client`, on `clock`.
    public init(
        store: any BookStore,
        client: any OcrolusAPIClient,
        clock: any WallClock,
        configuration: WatcherConfiguration,
        health: ServiceHealth,
        logger: Logger,
        metrics: BookWatchMetrics = BookWatchMetrics(),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.metrics = metrics
        self.store = store
        self.client = client
        self.clock = clock
        self.configuration = configuration
        self.health = health
        self.logger = logger
        self.random = random
    }

    /// Its counters so far.
    public var stats: WatcherStats { state.withLock { $0.counters } }

    /// True when no webhook has arrived for `webhookSilence` (since the service started if none
    /// ever did), or for many expected gaps while Books are processing (a suspected outage,
    /// `WebhookArrivals`). Refreshes the flag the schedule uses; turning silent logs it and pulls
    /// in the polls scheduled while webhooks were trusted (on a suspected outage, those of Books
    /// still processing: finished Books' webhooks were not expected).
    @discardableResult
    public func refreshSilence() async -> Bool {
        let now = clock.now()
        await readSharedIfDue(now: now)
        // Silence is the deployment's: the last webhook any replica (or an earlier run) stored.
        let persisted = state.withLock { $0.shared.lastWebhookAt }
        let last = [health.snapshot.lastWebhookAt, persisted].compactMap { $0 }.max() ?? health.startedAt
        let longSilence = now.timeIntervalSince(last) > configuration.webhookSilence
        let outage = await outageSuspected(now: now, lastWebhook: last)
        let isSilent = longSilence || outage
        let (changed, longer) = state.withLock { state -> (Bool, Bool) in
            defer {
                state.silent = isSilent
                state.longSilent = longSilence
            }
            return (state.silent != isSilent, longSilence && !state.longSilent)
        }
        // A suspected outage that lasts the hour: now the finished Books' polls come in too.
        if !changed && longer { _ = try? await tightenPolls(includingFinished: true) }
        if changed {
            if isSilent {
                // The tightening below covers the Books in tracking too.
                state.withLock { $0.trackingTightenedAt = now }
                let interval = silentInterval()
                let moved = (try? await tightenPolls(includingFinished: longSilence)) ?? 0
                let expected = state.withLock { state -> String in
                    let processing = state.arrivals.samples.last?.processing ?? 0
                    return state.arrivals.expectedGap(processing: processing, until: last).map { "\(Int($0.rounded(.up)))" } ?? "unknown"
                }
                logger.warning(
                    longSilence
                        ? "no webhooks for a long while; shifting budget to polling"
                        : "webhooks look stopped: none for many expected gaps while Books are processing; polling takes over",
                    metadata: [
                        "silent_s": "\(Int(now.timeIntervalSince(last)))", "expected_gap_s": "\(expected)", "polls_moved": "\(moved)",
                        "poll_interval_s": "\(interval.map { "\(Int($0.rounded()))" } ?? "unknown")",
                        "finished_poll_interval_s": "\(finishedInterval().map { "\(Int($0.rounded()))" } ?? "unknown")",
                    ]
                )
            } else {
                logger.notice("webhooks are arriving again; polling backs off")
            }
        }
        health.setWebhooksSilent(isSilent)
        await tightenTracking(now: now)
        return isSilent
    }

    /// While webhooks are silent (none for long, or a suspected outage), every
    /// `WebhookArrivals.sampleEvery`: a Book tracked from outside the watcher (`bookwatch track
    /// --new` from the CLI, which cannot know the deployment's state) had its first poll set as if
    /// webhooks would announce its documents, up to a quarter of the maximum away; it comes within
    /// the silent interval like the Books already processing (a Book created during an outage
    /// never sends a first webhook). Merely lossy webhooks still bring most first uploads, whose
    /// transitions then set the untrusted cadence: polling new Books then costs more than it saves
    /// (measured: docs/benchmarks.md).
    func tightenTracking(now: Date) async {
        let due = state.withLock { state -> Bool in
            guard state.silent else { return false }
            if let last = state.trackingTightenedAt, now >= last, now.timeIntervalSince(last) < WebhookArrivals.sampleEvery { return false }
            state.trackingTightenedAt = now
            return true
        }
        guard due else { return }
        do {
            let moved = try await store.tightenPolls(now: now, scope: .tracking, silentInterval: silentInterval(), finishedInterval: nil)
            if moved > 0 { logger.debug("first polls of newly tracked Books pulled in", metadata: ["polls_moved": "\(moved)"]) }
        } catch {
            // The loops already log a database that fails; this runs every 10 s meanwhile.
            logger.debug("could not pull in newly tracked Books' first polls", metadata: ["error": "\(error)"])
        }
    }

    /// Samples the inbox's newest id and the Books processing (every `WebhookArrivals.sampleEvery`),
    /// and asks whether the silence since `lastWebhook` is an outage. A failed reading is skipped.
    func outageSuspected(now: Date, lastWebhook: Date) async -> Bool {
        await sampleArrivals(now: now)
        guard configuration.detectOutages else { return false }
        let floor = store.schedule.minimum
        return state.withLock { state in
            // A rise of the inbox's id is a delivery too (another replica's, not yet in the shared time).
            let last = max(lastWebhook, state.arrivals.lastRise ?? lastWebhook)
            return state.arrivals.suspectsOutage(now: now, lastWebhook: last, floor: floor)
        }
    }

    /// Reads the inbox's newest id and the count of Books processing when a sample is due (every
    /// `WebhookArrivals.sampleEvery`; a failed reading is skipped). Even without outage detection:
    /// the polls' interval while webhooks are silent follows the count (`silentInterval()`), and a
    /// poll round reads it before each batch, so a long round does not outlive it.
    func sampleArrivals(now: Date) async {
        guard state.withLock({ $0.arrivals.wantsSample(at: now) }) else { return }
        do {
            let inboxID = try await store.newestInboxID()
            let counts = try await store.polledCounts()
            state.withLock {
                $0.arrivals.record(WebhookArrivals.Sample(at: now, inboxID: inboxID, processing: counts.processing, finished: counts.finished))
                $0.finishedPolled = counts.finished
            }
        } catch {
            logger.debug("could not sample webhook arrivals", metadata: ["error": "\(error)"])
        }
    }

    // MARK: startup

    /// Resumes from the database alone: claims a previous run of this process left are given
    /// back (on a shared database, only its own and expired ones).
    public func resume() async throws {
        try await readShared(now: clock.now())
        let rearmed = try await store.recoverLeases(owner: configuration.owner, now: clock.now())
        if rearmed > 0 { logger.notice("re-armed analytics jobs left running by a previous process", metadata: ["jobs": "\(rearmed)"]) }
        // Trust is decided before any loop runs: silence from the deployment's last webhook.
        await refreshSilence()
    }

    func beginPoll(_ uuid: BookUUID) -> Bool { state.withLock { $0.inFlight.insert(uuid).inserted } }
    func endPoll(_ uuid: BookUUID) { state.withLock { _ = $0.inFlight.remove(uuid) } }
    var inFlightBooks: Set<BookUUID> { state.withLock { $0.inFlight } }
    func recordPoll(_ reason: PollReason) {
        state.withLock { $0.counters.polls[reason, default: 0] += 1 }
        metrics.polled(reason)
    }

    func recordPollFailure() { state.withLock { $0.counters.pollFailures += 1 } }

    func recordNotReady() {
        state.withLock { $0.counters.notReady += 1 }
        metrics.analyticsNotReady()
    }

    func recordRetrieval(_ job: ClaimedJob) {
        state.withLock { $0.counters.retrievals += 1 }
        metrics.analytics(.stored)
        metrics.completed(afterSeconds: clock.now().timeIntervalSince(job.openedAt))
    }

    func recordAnalyticsError(final: Bool) {
        state.withLock { $0.counters.analyticsErrors += 1 }
        metrics.analytics(final ? .failed : .error)
    }

    /// Webhooks silent: none for `webhookSilence`, or an outage suspected (not merely lossy).
    var webhooksStopped: Bool { state.withLock { $0.silent } }

    /// Silent webhooks, or webhooks that miss changes: either way polling takes over.
    func options() -> TransitionOptions {
        let untrusted = state.withLock { $0.silent || $0.loss.isLossy }
        let trusted = configuration.trustWebhooks && !untrusted
        return TransitionOptions(
            webhooksSilent: untrusted,
            webhooksTrusted: trusted,
            silentInterval: untrusted ? silentInterval() : nil,
            finishedInterval: trusted ? nil : finishedInterval()
        )
    }

    /// The interval between a processing Book's polls while webhooks are silent, from the
    /// deployment's rate and the last count of Books processing; nil while either is not known
    /// or the count is older than `silentSampleAge` (readings failing, or the loops held up).
    func silentInterval() -> TimeInterval? {
        let now = clock.now()
        guard let rate = configuration.requestRate,
            let sample = state.withLock({ $0.arrivals.samples.last }),
            abs(now.timeIntervalSince(sample.at)) <= Self.silentSampleAge
        else { return nil }
        return store.schedule.silentInterval(processing: sample.processing, rate: rate)
    }

    /// The shortest interval between a finished Book's retention polls while webhooks are not
    /// trusted, from the deployment's rate and the last count of finished Books with one,
    /// whatever its age (nil until the first count, or without a known rate).
    func finishedInterval() -> TimeInterval? {
        guard let rate = configuration.requestRate, let finished = state.withLock({ $0.finishedPolled }) else { return nil }
        return store.schedule.finishedInterval(finished: finished, rate: rate)
    }

    /// How old a count of Books processing may be and still size the silent interval.
    static let silentSampleAge: TimeInterval = 12 * WebhookArrivals.sampleEvery

    /// Polls set while webhooks were trusted come due within the silent interval (Books still
    /// processing) or the finished Books' interval (watched for a reopen: the maximum unless the
    /// budget needs longer).
    func tightenPolls(includingFinished: Bool = true) async throws -> Int {
        try await store.tightenPolls(
            now: clock.now(),
            includingFinished: includingFinished,
            silentInterval: silentInterval(),
            finishedInterval: finishedInterval()
        )
    }

    /// The current estimate of document changes no webhook announced.
    public var webhookLoss: WebhookLossEstimate { state.withLock { $0.loss } }

    /// One observation into the deployment's estimate (read, observe and write in one transaction,
    /// so replicas add up their evidence); the local copy follows. Without the database the local
    /// estimate still learns.
    private func observeShared(
        _ kind: WebhookLossEstimate.Kind,
        announced: Int,
        missed: Int
    ) async -> (changed: Bool, estimate: WebhookLossEstimate) {
        let local = state.withLock { $0.loss }
        let now = clock.now()
        // Not the kind that counts now (or none arrives): nothing to write.
        guard local.measuredKind(at: now) == kind else { return (false, local) }
        do {
            let stored = try await store.updateSharedState(Self.lossKey, at: now) { current in
                var estimate = current.flatMap { try? JSONDecoder().decode(WebhookLossEstimate.self, from: Data($0.utf8)) } ?? local
                estimate.observe(kind, announced: announced, missed: missed, at: now)
                return (try? String(decoding: JSONEncoder().encode(estimate), as: UTF8.self)) ?? ""
            }
            if let estimate = try? JSONDecoder().decode(WebhookLossEstimate.self, from: Data(stored.utf8)) {
                state.withLock { $0.loss = estimate }
                return (estimate.isLossy != local.isLossy, estimate)
            }
        } catch {
            logger.warning("could not store the webhook loss estimate", metadata: ["error": "\(error)"])
        }
        return state.withLock { state in (state.loss.observe(kind, announced: announced, missed: missed, at: now), state.loss) }
    }

    /// Applies `input` to the Book (at `now`, the clock's time when nil) and feeds the loss
    /// estimate whatever evidence the transition produced: every input may (a webhook announces
    /// a finish late, any input settles an unannounced one), so every transition goes through here.
    @discardableResult
    func applyObserved(_ input: BookInput, to uuid: BookUUID, at now: Date? = nil) async throws -> TransitionOutcome? {
        let outcome = try await store.apply(input, to: uuid, at: now ?? clock.now(), options: options())
        if let outcome { await observeCoverage(outcome.actions) }
        return outcome
    }

    /// Feeds what a snapshot showed to the loss estimate (and says so when it turns; turning lossy
    /// pulls in the polls scheduled while webhooks were trusted). Only the kind of event the
    /// deployment receives counts (`WebhookLossEstimate.measuredKind`).
    func observeCoverage(_ actions: [BookAction]) async {
        for action in actions {
            let observation: (WebhookLossEstimate.Kind, Int, Int)
            switch action {
            case .webhookCoverage(let announced, let missed): observation = (.documents, announced, missed)
            case .bookFinishCoverage(let announced): observation = (.bookFinishes, announced ? 1 : 0, announced ? 0 : 1)
            default: continue
            }
            let (changed, estimate) = await observeShared(observation.0, announced: observation.1, missed: observation.2)
            metrics.webhookLoss(estimate.lossRatio ?? 0)
            guard changed else { continue }
            let percent = Int(((estimate.lossRatio ?? 0) * 100).rounded())
            if estimate.isLossy {
                let moved = (try? await tightenPolls()) ?? 0
                logger.warning(
                    "webhooks miss changes; polling tightens",
                    metadata: ["unannounced_percent": "\(percent)", "polls_moved": "\(moved)"]
                )
            } else {
                logger.notice("webhooks announce changes again; polling backs off", metadata: ["unannounced_percent": "\(percent)"])
            }
        }
    }
}

extension ServiceHealth {
    /// Reported in `/readyz` detail; never makes readiness fail.
    public func setWebhooksSilent(_ silent: Bool) { webhooksSilentFlag.withLock { $0 = silent } }
}
