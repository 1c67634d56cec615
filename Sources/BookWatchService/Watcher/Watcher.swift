import BookWatchClocks
import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import Synchronization

/// Settings of the reconcile loop, scheduler and analytics worker.
public struct WatcherConfiguration: Sendable {
    /// The endpoints retrieved per finished generation.
    public var analytics: [AnalyticsEndpoint] = [.summary]
    /// Track unknown Books that webhooks mention.
    public var autoTrack = true
    /// Status polls in flight at once.
    public var pollConcurrency = 8
    /// Analytics jobs in flight at once.
    public var jobConcurrency = 4
    /// How long a claim (analytics job, poll, inbox row) holds before another replica may take
    /// the work over: a replica that dies delays its claimed work by at most this.
    public var lease: TimeInterval = 120
    /// Backoff of analytics retries after real errors (5xx, 429, timeouts): retried within seconds
    /// at first; `maxAttempts` errors fail the job. The cap also bounds the wait after a 425.
    public var analyticsRetry = RetryPolicy(base: 2, cap: 300, maxAttempts: 60)
    /// A job still not retrieved this long after it opened fails (`BOOKWATCH_ANALYTICS_GIVE_UP_HOURS`).
    public var analyticsGiveUp: TimeInterval = 48 * 3600
    /// What is pruned is older than this (`BOOKWATCH_RETAIN_DAYS`): processed deliveries,
    /// delivered notifications, finished jobs of earlier generations.
    public var retention: TimeInterval = 30 * 86400
    /// How often pruning runs.
    public var pruneEvery: TimeInterval = 3600
    /// Backoff of a Book's failed status polls: doubling per failure in a row from `base`, capped
    /// at the poll maximum.
    public var pollRetry = RetryPolicy(base: 10, cap: 300, maxAttempts: 1)
    /// No webhook at all for this long means webhooks are silent: polling takes over.
    public var webhookSilence: TimeInterval = 3600
    /// `BOOKWATCH_WEBHOOK_TRUST`: while the loss estimate finds webhooks reliable, act on a
    /// finished `book.verified` body without a status call and space out polls of finished Books
    /// (true, `measured`); or always confirm by polling (false, `never`).
    public var trustWebhooks = true
    /// Owner name of this process's claims: host, pid and a random part, so that replicas never
    /// share one (in containers every replica may be pid 1) and a restart is a new owner.
    public var owner = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt16.random(in: .min ... .max))"

    /// The defaults.
    public init() {}
}

/// Counters the demo and the metrics read.
public struct WatcherStats: Sendable {
    /// Status calls made, by reason.
    public var polls: [PollReason: Int] = [:]
    /// Status calls that failed.
    public var pollFailures = 0
    /// Generations whose analytics were stored.
    public var retrievals = 0
    /// Analytics answers 425 (not ready).
    public var notReady = 0
    /// Analytics attempts that failed.
    public var analyticsErrors = 0
    /// Inbox rows processed.
    public var inboxProcessed = 0
    /// Books tracked because a webhook named them.
    public var autoTracked = 0
}

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
        /// No webhook for longer than `webhookSilence`.
        var silent = false
        var loss = WebhookLossEstimate()
        var lastPruned: Date?
        /// The deployment's last webhook and when the shared measurements were last read.
        var shared = SharedView()
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
    /// ever did). Refreshes the flag the schedule uses; turning silent logs it and pulls in the
    /// polls scheduled while webhooks were trusted.
    @discardableResult
    public func refreshSilence() async -> Bool {
        let now = clock.now()
        await readSharedIfDue(now: now)
        // Silence is the deployment's: the last webhook any replica (or an earlier run) stored.
        let persisted = state.withLock { $0.shared.lastWebhookAt }
        let last = [health.snapshot.lastWebhookAt, persisted].compactMap { $0 }.max() ?? health.startedAt
        let isSilent = now.timeIntervalSince(last) > configuration.webhookSilence
        let changed = state.withLock { state -> Bool in
            defer { state.silent = isSilent }
            return state.silent != isSilent
        }
        if changed {
            if isSilent {
                logger.warning(
                    "no webhooks for a long while; shifting budget to polling",
                    metadata: ["silent_s": "\(Int(now.timeIntervalSince(last)))"]
                )
                _ = try? await tightenPolls()
            } else {
                logger.notice("webhooks are arriving again; polling backs off")
            }
        }
        health.setWebhooksSilent(isSilent)
        return isSilent
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

    // MARK: inbox

    /// Claims stored deliveries and processes them in arrival order; returns how many. Each is
    /// processed once: the hint commits together with its row's mark, and a row another replica
    /// marked first is skipped.
    @discardableResult
    public func processInbox(limit: Int = 256) async throws -> Int {
        let claimed = try await store.claimInbox(owner: configuration.owner, now: clock.now(), limit: limit, lease: configuration.lease)
        await recordWebhooks(claimed)
        // Books are served side by side, `inboxConcurrency` at a time, each Book's deliveries
        // one after the other: a delivery that needs a status call (a pk not known here) waits
        // for a slow answer without holding up other Books, whose hints would otherwise reach
        // them after a poll had already seen the change (and counted it unannounced). One Book's
        // deliveries stay in order: two of them auto-tracking it at once would race (the second
        // track could overwrite the first's urgent poll), and pk-only ones would each make the
        // status call that one makes for all. Hints are order-free: the machine's property.
        let apiFailed = RoundFlag()
        var byBook: [String: [StoredDelivery]] = [:]
        var order: [String] = []
        for stored in claimed {
            let key = Self.bookKey(stored.delivery)
            if byBook[key] == nil { order.append(key) }
            byBook[key, default: []].append(stored)
        }
        return try await withThrowingTaskGroup(of: Int.self) { group in
            var processed = 0
            var running = 0
            for key in order {
                let deliveries = byBook[key] ?? []
                if running >= Self.inboxConcurrency, let counted = try await group.next() {
                    running -= 1
                    processed += counted
                }
                group.addTask {
                    var counted = 0
                    for stored in deliveries where try await self.settle(stored, apiFailed: apiFailed) { counted += 1 }
                    return counted
                }
                running += 1
            }
            for try await counted in group { processed += counted }
            return processed
        }
    }

    /// Which Book a delivery is about, as far as its row tells (uuid, else pk, else the row).
    static func bookKey(_ delivery: InboxDelivery) -> String {
        if let uuid = delivery.bookUUID { return "uuid:\(uuid)" }
        if let pk = delivery.bookPK { return "pk:\(pk)" }
        return "row:\(delivery.requestID ?? UUID().uuidString)"
    }

    /// Set once in a round of work (e.g. "the API failed"), read by the round's concurrent parts.
    public final class RoundFlag: Sendable {
        private let value = Atomic<Bool>(false)
        /// Whether it was set.
        public var isSet: Bool { value.load(ordering: .acquiring) }
        /// Sets it (once set, it stays).
        public func set() { value.store(true, ordering: .releasing) }
        /// Not set.
        public init() {}
    }

    /// How many Books' deliveries are applied at once.
    static let inboxConcurrency = 8

    /// Applies one claimed delivery and marks it, or defers it by its own backoff; answers whether
    /// it counted as processed. A delivery that cannot be applied yet (API or database trouble)
    /// waits alone; once the API failed in this round, deliveries that need it wait too, without
    /// a call.
    private func settle(_ stored: StoredDelivery, apiFailed: RoundFlag) async throws -> Bool {
        guard let outcome = await process(stored, apiFailed: apiFailed) else {
            if stored.attempts + 1 >= Self.inboxMaxAttempts {
                // A poison row: recorded with its outcome, never retried for ever.
                _ = try await store.markProcessed(stored.id, at: clock.now(), outcome: .gaveUp(attempts: stored.attempts + 1))
                return false
            }
            let wait = Self.inboxRetryDelay(attempts: stored.attempts + 1, cap: store.schedule.maximum, unitRandom: random())
            try await store.deferInbox(stored.id, owner: configuration.owner, until: clock.now().addingTimeInterval(wait))
            return false
        }
        // An applied hint's row was marked in the transition's own transaction.
        let counted = outcome == .applied ? true : try await store.markProcessed(stored.id, at: clock.now(), outcome: outcome)
        if counted { state.withLock { $0.counters.inboxProcessed += 1 } }
        return counted
    }

    /// Attempts after which a delivery that cannot be applied is marked processed with its reason
    /// (about a day of backoff at the default poll maximum).
    static let inboxMaxAttempts = 60

    /// The wait before a delivery that could not be applied is tried again: 2 s doubling per
    /// attempt, capped at `cap`, jittered over its upper half.
    static func inboxRetryDelay(attempts: Int, cap: TimeInterval, unitRandom: Double) -> TimeInterval {
        let ceiling = min(max(cap, 2), 2 * pow(2, Double(min(max(attempts - 1, 0), 30))))
        return max(1, ceiling * (0.5 + 0.5 * min(max(unitRandom, 0), 1)))
    }

    /// How the delivery ended, or nil when it must wait and be tried again.
    private func process(_ stored: StoredDelivery, apiFailed: RoundFlag) async -> InboxOutcome? {
        let delivery = stored.delivery
        var log = logger
        log[metadataKey: "request_id"] = "\(delivery.requestID ?? "-")"
        // The hint admission decoded and the row keeps; a row stored without one (before the
        // inbox kept hints) is decoded here.
        var hint: WebhookHint
        var bookUUID = delivery.bookUUID
        var bookPK = delivery.bookPK
        if let stored = delivery.hint {
            hint = stored
        } else {
            guard let decoded = try? DecodedWebhook.decode(delivery.body) else { return .undecodable }
            hint = decoded.hint
            bookUUID = bookUUID ?? decoded.bookUUID
            bookPK = bookPK ?? decoded.bookPK
        }
        hint.authenticated = delivery.authenticated
        do {
            var uuid = bookUUID
            var learned: (result: BookStatusResult, at: Date)?
            if uuid == nil, let pk = bookPK {
                uuid = try await store.uuid(forPK: pk)
                if uuid == nil {
                    // Not known here: one status call by pk tells the uuid (and the status itself).
                    guard !apiFailed.isSet else { return nil }
                    let result: BookStatusResult
                    do {
                        result = try await client.bookStatus(pk: pk, priority: .urgent)
                    } catch let error as OcrolusError where error.kind != .permanent {
                        apiFailed.set()
                        throw error
                    }
                    learned = (result, clock.now())
                    uuid = result.uuid
                    recordPoll(.webhookHint)
                }
            }
            guard let uuid else { return .unresolved(detail: nil) }
            log[metadataKey: "book_uuid"] = "\(uuid)"
            let now = clock.now()
            // Auto-track: a Book first seen here is tracked and given its hint in one transaction.
            let source = HintDelivery(inboxRow: stored.id, trackUnknown: configuration.autoTrack)
            let outcome = try await store.apply(.webhook(hint, source), to: uuid, at: now, options: options())
            if outcome == nil {
                // Untracked by the operator: stored and counted, never tracked again by a webhook.
                if try await store.isUntracked(uuid) { return untrackedDelivery(log) }
                return .ignored
            }
            if outcome?.created == true {
                state.withLock { $0.counters.autoTracked += 1 }
                log.info("auto-tracking a Book first seen in a webhook")
            }
            if let learned {
                let answer = PollAnswer(takenAt: learned.result.requestedAt ?? learned.at)
                _ = try await store.apply(.snapshot(learned.result.snapshot, answer), to: uuid, at: now, options: options())
            }
            log.debug("webhook applied", metadata: ["event": "\(delivery.event)"])
            return .applied
        } catch let error as StoreError where error.isDuplicate {
            return .processedElsewhere  // another replica marked the row first
        } catch {
            if let error = error as? OcrolusError, error.kind == .permanent {
                return .unresolved(detail: "\(error)")
            }
            log.warning("webhook could not be applied yet; will retry", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private func untrackedDelivery(_ log: Logger) -> InboxOutcome {
        metrics.untrackedWebhook()
        log.info("webhook about an untracked Book stored, not applied")
        return .untracked
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

    /// Silent webhooks, or webhooks that miss document changes: either way polling takes over.
    func options() -> TransitionOptions {
        let untrusted = state.withLock { $0.silent || $0.loss.isLossy }
        return TransitionOptions(webhooksSilent: untrusted, webhooksTrusted: configuration.trustWebhooks && !untrusted)
    }

    /// Polls set while webhooks were trusted come due within twice the minimum interval (Books
    /// still processing) or the maximum (finished Books, watched for a reopen).
    func tightenPolls() async throws -> Int {
        try await store.tightenPolls(now: clock.now())
    }

    /// The current estimate of document changes no webhook announced.
    public var webhookLoss: WebhookLossEstimate { state.withLock { $0.loss } }

    /// One observation into the deployment's estimate (read, observe and write in one transaction,
    /// so replicas add up their evidence); the local copy follows. Without the database the local
    /// estimate still learns.
    private func observeShared(announced: Int, missed: Int) async -> (changed: Bool, estimate: WebhookLossEstimate) {
        let local = state.withLock { $0.loss }
        do {
            let stored = try await store.updateSharedState(Self.lossKey, at: clock.now()) { current in
                var estimate = current.flatMap { try? JSONDecoder().decode(WebhookLossEstimate.self, from: Data($0.utf8)) } ?? local
                estimate.observe(announced: announced, missed: missed)
                return (try? String(decoding: JSONEncoder().encode(estimate), as: UTF8.self)) ?? ""
            }
            if let estimate = try? JSONDecoder().decode(WebhookLossEstimate.self, from: Data(stored.utf8)) {
                state.withLock { $0.loss = estimate }
                return (estimate.isLossy != local.isLossy, estimate)
            }
        } catch {
            logger.warning("could not store the webhook loss estimate", metadata: ["error": "\(error)"])
        }
        return state.withLock { state in (state.loss.observe(announced: announced, missed: missed), state.loss) }
    }

    /// Feeds what a snapshot showed to the loss estimate (and says so when it turns; turning lossy
    /// pulls in the polls scheduled while webhooks were trusted).
    func observeCoverage(_ actions: [BookAction]) async {
        for case .webhookCoverage(let announced, let missed) in actions {
            let (changed, estimate) = await observeShared(announced: announced, missed: missed)
            metrics.webhookLoss(estimate.lossRatio ?? 0)
            guard changed else { continue }
            let percent = Int(((estimate.lossRatio ?? 0) * 100).rounded())
            if estimate.isLossy {
                let moved = (try? await tightenPolls()) ?? 0
                logger.warning(
                    "webhooks miss document changes; polling tightens",
                    metadata: ["unannounced_percent": "\(percent)", "polls_moved": "\(moved)"]
                )
            } else {
                logger.notice("webhooks announce document changes again; polling backs off", metadata: ["unannounced_percent": "\(percent)"])
            }
        }
    }
}

extension ServiceHealth {
    /// Reported in `/readyz` detail; never makes readiness fail.
    public func setWebhooksSilent(_ silent: Bool) { webhooksSilentFlag.withLock { $0 = silent } }
}
