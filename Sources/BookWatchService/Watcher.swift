import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import Synchronization

/// Settings of the reconcile loop, scheduler and analytics worker.
public struct WatcherConfiguration: Sendable {
    public var analytics: [AnalyticsEndpoint] = [.summary]
    public var autoTrack = true
    /// Status polls in flight at once.
    public var pollConcurrency = 8
    /// Analytics jobs in flight at once.
    public var jobConcurrency = 4
    public var lease: TimeInterval = 120
    /// Backoff of analytics retries (425 and transient errors).
    public var analyticsRetry = RetryPolicy(base: 15, cap: 300, maxAttempts: 60)
    /// Backoff of a failed status poll.
    public var pollRetry = RetryPolicy(base: 10, cap: 300, maxAttempts: 1)
    /// No webhook at all for this long means webhooks are silent: polling takes over.
    public var webhookSilence: TimeInterval = 3600
    /// Owner name of this process's leases.
    public var owner = "bookwatch-\(ProcessInfo.processInfo.processIdentifier)"

    public init() {}
}

/// Counters the demo and the metrics read.
public struct WatcherStats: Sendable {
    public var polls: [PollReason: Int] = [:]
    public var pollFailures = 0
    public var retrievals = 0
    public var notReady = 0
    public var analyticsErrors = 0
    public var inboxProcessed = 0
    public var autoTracked = 0
}

/// The heart of bookwatch: turns inbox deliveries into hints, polls what is due, and retrieves
/// analytics for finished generations exactly once. Each step is a method that does the work due
/// now and returns, so the service loops and the virtual-time tests drive the same code.
public final class Watcher: Sendable {
    let store: SQLiteBookStore
    let client: any OcrolusAPIClient
    let clock: any WallClock
    public let configuration: WatcherConfiguration
    let health: ServiceHealth
    let logger: Logger
    let random: @Sendable () -> Double
    public let metrics: BookWatchMetrics
    private let inFlight = Mutex<Set<BookUUID>>([])
    /// Books that got a poll-worthy hint while being polled: they are polled once more.
    private let dirty = Mutex<Set<BookUUID>>([])
    private let counters = Mutex(WatcherStats())
    private let silent = Mutex(false)
    private let loss = Mutex(WebhookLossEstimate())

    public init(
        store: SQLiteBookStore, client: any OcrolusAPIClient, clock: any WallClock, configuration: WatcherConfiguration,
        health: ServiceHealth, logger: Logger, metrics: BookWatchMetrics = BookWatchMetrics(),
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

    public var stats: WatcherStats { counters.withLock { $0 } }

    /// True when no webhook has arrived for `webhookSilence` (since the service started if none
    /// ever did). Refreshes the flag the schedule uses; turning silent logs it and pulls in the
    /// polls scheduled while webhooks were trusted.
    @discardableResult
    public func refreshSilence() async -> Bool {
        let now = clock.now()
        let last = health.snapshot.lastWebhookAt ?? health.startedAt
        let isSilent = now.timeIntervalSince(last) > configuration.webhookSilence
        let changed = silent.withLock { state -> Bool in
            defer { state = isSilent }
            return state != isSilent
        }
        if changed {
            if isSilent {
                logger.warning("no webhooks for a long while; shifting budget to polling",
                               metadata: ["silent_s": "\(Int(now.timeIntervalSince(last)))"])
                _ = try? await tightenPolls()
            } else {
                logger.notice("webhooks are arriving again; polling backs off")
            }
        }
        health.setWebhooksSilent(isSilent)
        return isSilent
    }

    // MARK: startup

    /// Resumes from the database alone: jobs leased by a previous process are re-armed.
    public func resume() async throws {
        let rearmed = try await store.rearmLeases(expiringBefore: .distantFuture, dueAt: clock.now())
        if rearmed > 0 { logger.notice("re-armed analytics jobs left running by a previous process", metadata: ["jobs": "\(rearmed)"]) }
    }

    // MARK: inbox

    /// Processes stored deliveries in arrival order; returns how many.
    @discardableResult
    public func processInbox(limit: Int = 256) async throws -> Int {
        let pending = try await store.pendingInbox(limit: limit)
        var processed = 0
        for stored in pending {
            // A delivery that cannot be applied yet (API or database trouble) stays in the inbox
            // and is retried next round, before anything after it: order is kept.
            guard let outcome = await process(stored) else { break }
            try await store.markProcessed(stored.id, at: clock.now(), outcome: outcome)
            counters.withLock { $0.inboxProcessed += 1 }
            processed += 1
        }
        return processed
    }

    private func process(_ stored: StoredDelivery) async -> String? {
        let delivery = stored.delivery
        var log = logger
        log[metadataKey: "request_id"] = "\(delivery.requestID ?? "-")"
        guard let decoded = try? DecodedWebhook.decode(delivery.body) else { return "undecodable" }
        do {
            var uuid = delivery.bookUUID ?? decoded.bookUUID
            var learned: BookStatusResult?
            if uuid == nil, let pk = delivery.bookPK ?? decoded.bookPK {
                uuid = try await store.uuid(forPK: pk)
                if uuid == nil {
                    // Not known here: one status call by pk tells the uuid (and the status itself).
                    learned = try await client.bookStatus(pk: pk, priority: .urgent)
                    uuid = learned?.uuid
                    recordPoll(.webhookHint)
                }
            }
            guard let uuid else { return "unresolved" }
            log[metadataKey: "book_uuid"] = "\(uuid)"
            let now = clock.now()
            var outcome = try await store.apply(.webhook(decoded.hint), to: uuid, at: now, options: options())
            if outcome == nil {
                guard configuration.autoTrack else { return "ignored" }
                _ = try await store.apply(.command(.track(.webhook)), to: uuid, at: now, options: options())
                counters.withLock { $0.autoTracked += 1 }
                log.info("auto-tracking a Book first seen in a webhook")
                outcome = try await store.apply(.webhook(decoded.hint), to: uuid, at: now, options: options())
            }
            if let learned {
                _ = try await store.apply(.snapshot(learned.snapshot), to: uuid, at: now, options: options())
            }
            if let outcome, outcome.actions.contains(where: { if case .pollNow = $0 { true } else { false } }) {
                markDirtyIfInFlight(uuid)
            }
            log.debug("webhook applied", metadata: ["event": "\(decoded.eventName)"])
            return "applied"
        } catch {
            if let error = error as? OcrolusError, error.kind == .permanent {
                return "unresolved: \(error)"
            }
            log.warning("webhook could not be applied yet; will retry", metadata: ["error": "\(error)"])
            return nil
        }
    }

    func inFlightContains(_ uuid: BookUUID) -> Bool { inFlight.withLock { $0.contains(uuid) } }
    func beginPoll(_ uuid: BookUUID) -> Bool { inFlight.withLock { $0.insert(uuid).inserted } }
    func endPoll(_ uuid: BookUUID) { inFlight.withLock { _ = $0.remove(uuid) } }
    func takeDirty(_ uuid: BookUUID) -> Bool { dirty.withLock { $0.remove(uuid) != nil } }
    func recordPoll(_ reason: PollReason) {
        counters.withLock { $0.polls[reason, default: 0] += 1 }
        metrics.polled(reason)
    }

    func recordPollFailure() { counters.withLock { $0.pollFailures += 1 } }

    func recordNotReady() {
        counters.withLock { $0.notReady += 1 }
        metrics.analyticsNotReady()
    }

    func recordRetrieval(_ job: ClaimedJob) {
        counters.withLock { $0.retrievals += 1 }
        metrics.analytics(.stored)
        metrics.completed(afterSeconds: clock.now().timeIntervalSince(job.openedAt))
    }

    func recordAnalyticsError(final: Bool) {
        counters.withLock { $0.analyticsErrors += 1 }
        metrics.analytics(final ? .failed : .error)
    }

    private func markDirtyIfInFlight(_ uuid: BookUUID) {
        if inFlight.withLock({ $0.contains(uuid) }) { dirty.withLock { _ = $0.insert(uuid) } }
    }

    /// Silent webhooks, or webhooks that miss document changes: either way polling takes over.
    func options(retryAt: Date? = nil, results: [AnalyticsResult] = []) -> TransitionOptions {
        TransitionOptions(webhooksSilent: silent.withLock { $0 } || loss.withLock { $0.isLossy }, retryAt: retryAt, results: results)
    }

    /// Polls set while webhooks were trusted come due within twice the minimum interval.
    func tightenPolls() async throws -> Int {
        try await store.tightenActivePolls(now: clock.now(), spread: 2 * store.schedule.minimum)
    }

    /// The current estimate of document changes no webhook announced.
    public var webhookLoss: WebhookLossEstimate { loss.withLock { $0 } }

    /// Feeds what a snapshot showed to the loss estimate (and says so when it turns; turning lossy
    /// pulls in the polls scheduled while webhooks were trusted).
    func observeCoverage(_ actions: [BookAction]) async {
        for case .webhookCoverage(let announced, let missed) in actions {
            let (changed, estimate) = loss.withLock { estimate in (estimate.observe(announced: announced, missed: missed), estimate) }
            metrics.webhookLoss(estimate.lossRatio ?? 0)
            guard changed else { continue }
            let percent = Int(((estimate.lossRatio ?? 0) * 100).rounded())
            if estimate.isLossy {
                let moved = (try? await tightenPolls()) ?? 0
                logger.warning("webhooks miss document changes; polling tightens",
                               metadata: ["unannounced_percent": "\(percent)", "polls_moved": "\(moved)"])
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
