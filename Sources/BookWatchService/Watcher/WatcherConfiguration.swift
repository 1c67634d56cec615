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
    /// Suspect a webhook outage from silence while Books are processing, long before
    /// `webhookSilence` (`WebhookArrivals`).
    public var detectOutages = true
    /// `BOOKWATCH_WEBHOOK_TRUST`: while the loss estimate finds webhooks reliable, act on a
    /// finished `book.verified` body without a status call and space out polls of finished Books
    /// (true, `measured`); or always confirm by polling (false, `never`).
    public var trustWebhooks = true
    /// The organisation's request rate (`BOOKWATCH_RATE_LIMIT`, requests/s): while webhooks are
    /// silent, Books still processing are polled as often as a share of it allows
    /// (`PollSchedule.silentInterval(processing:rate:)`). Nil: not known; they are polled with
    /// full jitter up to twice the minimum.
    public var requestRate: Double?
    /// Owner name of this process's claims: host, pid and a random part, so that replicas never
    /// share one (in containers every replica may be pid 1) and a restart is a new owner.
    public var owner = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt16.random(in: .min ... .max))"

    /// The defaults.
    public init() {}
}
