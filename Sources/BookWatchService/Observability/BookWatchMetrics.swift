import BookWatchCore
import BookWatchStore
import Foundation
import OcrolusAPI
import Prometheus

/// The version `bookwatch_build_info` and `bookwatch --version` report.
public enum BookWatchVersion {
    /// This build's version.
    public static let current = "0.6.0"
}

/// Every `bookwatch_*` series of `GET /metrics` (names and meanings in docs/operations.md).
///
/// Each instance owns its registry, so tests read the values they drove; `serve` also
/// bootstraps swift-metrics with `httpFactory` so Hummingbird's metrics middleware lands in the
/// same registry. Label values are bounded: outcomes, reasons, states and endpoint names come
/// from closed enums, HTTP codes from the API's answers.
public final class BookWatchMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry

    let webhooks: [WebhookOutcome: Prometheus.Counter]
    let webhookAck: ValueHistogram
    let polls: [PollReason: Prometheus.Counter]
    let limiterWait: ValueHistogram
    let retrievals: [RetrievalOutcome: Prometheus.Counter]
    let notReady: Prometheus.Counter
    let completion: ValueHistogram
    let unknownStatus: Prometheus.Counter
    let lateResults: Prometheus.Counter
    let pollFailures: [PollFailure: Prometheus.Counter]
    let untrackedWebhooks: Prometheus.Counter
    let books: [BookPhase: Prometheus.Gauge]
    let documents: [DocumentProgress: Prometheus.Gauge]
    let inboxPending: Prometheus.Gauge
    let pollsOverdue: Prometheus.Gauge
    let webhookSilence: Prometheus.Gauge
    let webhookLossRatio: Prometheus.Gauge
    let ready: Prometheus.Gauge

    /// How an analytics attempt ended (the `outcome` label of `bookwatch_analytics_retrievals_total`).
    public enum RetrievalOutcome: String, Sendable, CaseIterable {
        /// Results stored with the job's completion: the one retrieval of a generation.
        case stored
        /// A transient error (5xx, 429, network): retried later.
        case error
        /// A permanent error, or attempts exhausted: the job ended `failed`.
        case failed
    }

    /// How a status poll failed (the `kind` label of `bookwatch_poll_failures_total`).
    public enum PollFailure: String, Sendable, CaseIterable {
        /// 5xx, 429, timeout, a bare 404, an unreadable body: retried with backoff per Book.
        case transient
        /// Refused for good (403/2102...): the Book is marked failed.
        case refused
    }

    /// A poll is overdue when its time passed this long ago (the scheduler is falling behind).
    public static let overdueAfter: TimeInterval = 60

    /// Every bookwatch metric, registered in `registry`.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Prometheus.Counter {
            registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels)
        }
        func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Prometheus.Gauge {
            registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels)
        }
        func histogram(_ name: String, _ help: String, _ buckets: [Double]) -> ValueHistogram {
            registry.makeValueHistogram(descriptor: Self.descriptor(name, help), labels: [], buckets: buckets)
        }
        func each<Key: Hashable>(_ keys: some Sequence<Key>, _ make: (Key) -> Prometheus.Counter) -> [Key: Prometheus.Counter] {
            Dictionary(uniqueKeysWithValues: keys.map { ($0, make($0)) })
        }
        func eachGauge<Key: Hashable>(_ keys: some Sequence<Key>, _ make: (Key) -> Prometheus.Gauge) -> [Key: Prometheus.Gauge] {
            Dictionary(uniqueKeysWithValues: keys.map { ($0, make($0)) })
        }

        webhooks = each(WebhookOutcome.allCases) {
            counter("bookwatch_webhooks_received_total", "Webhook deliveries answered, by outcome.", [("outcome", $0.rawValue)])
        }
        webhookAck = histogram(
            "bookwatch_webhook_ack_seconds",
            "Time from a webhook's arrival to its answer (the durable insert included).",
            [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
        )
        polls = each(PollReason.allCases) {
            counter("bookwatch_polls_total", "Book status calls made, by why they were made.", [("reason", $0.rawValue)])
        }
        limiterWait = histogram(
            "bookwatch_rate_limiter_wait_seconds",
            "Time an Ocrolus call waited for the shared rate limiter.",
            [0.001, 0.01, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300]
        )
        retrievals = each(RetrievalOutcome.allCases) {
            counter(
                "bookwatch_analytics_retrievals_total",
                "Analytics attempts, by outcome; stored counts once per Book generation.",
                [("outcome", $0.rawValue)]
            )
        }
        notReady = counter("bookwatch_analytics_not_ready_total", "Analytics calls answered 425 (not ready yet; retried, not a failure).")
        completion = histogram(
            "bookwatch_completion_seconds",
            "Time from a Book seen finished to its analytics stored.",
            [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400]
        )
        unknownStatus = counter(
            "bookwatch_unknown_status_total",
            "Book or Document statuses this build does not know (treated as still processing)."
        )
        lateResults = counter(
            "bookwatch_analytics_late_results_total",
            "Analytics outcomes discarded because the worker's claim on the job was lost (lease lapsed, superseded)."
        )
        pollFailures = each(PollFailure.allCases) {
            counter("bookwatch_poll_failures_total", "Status polls that failed, by kind.", [("kind", $0.rawValue)])
        }
        untrackedWebhooks = counter(
            "bookwatch_webhooks_untracked_total",
            "Deliveries about untracked Books: stored and counted, never tracking the Book again."
        )
        books = eachGauge(BookPhase.allCases) { gauge("bookwatch_books", "Tracked Books, by state.", [("state", $0.rawValue)]) }
        documents = eachGauge(DocumentProgress.allCases) {
            gauge("bookwatch_documents", "Documents of tracked Books, by progress.", [("state", $0.rawValue)])
        }
        inboxPending = gauge("bookwatch_inbox_pending", "Stored webhook deliveries not yet applied.")
        pollsOverdue = gauge(
            "bookwatch_polls_overdue",
            "Books whose scheduled poll is more than \(Int(Self.overdueAfter)) s late."
        )
        webhookSilence = gauge(
            "bookwatch_webhook_silence_seconds",
            "Seconds since the last webhook was received (since start if none was)."
        )
        webhookLossRatio = gauge(
            "bookwatch_webhook_loss_ratio",
            "Estimated fraction of document changes no webhook announced (from what polls find); above 0.1 polling tightens."
        )
        ready = gauge("bookwatch_ready", "1 when /readyz answers ready (the database takes writes), else 0.")
        gauge("bookwatch_build_info", "The running build; always 1.", [("version", BookWatchVersion.current)]).set(to: 1.0)
    }

    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    static var ocrolusRequestsDescriptor: MetricNameDescriptor {
        descriptor(
            "bookwatch_ocrolus_requests_total",
            "Calls to the Ocrolus API, by endpoint (token requests too) and HTTP code (0: no answer; cancelled: cut short by shutdown)."
        )
    }
    static var ocrolusSecondsDescriptor: MetricNameDescriptor {
        descriptor("bookwatch_ocrolus_request_seconds", "Duration of Ocrolus API calls (the limiter wait excluded), by endpoint.")
    }
    static let ocrolusBuckets: [Double] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    // MARK: recording

    /// A delivery answered, with its outcome and the time it took.
    public func webhookAnswered(_ outcome: WebhookOutcome, seconds: TimeInterval) {
        webhooks[outcome]?.increment()
        webhookAck.record(seconds)
    }

    /// One completed request to Ocrolus.
    public func ocrolusRequest(_ record: RequestRecord) {
        let endpoint = Self.endpointLabel(record.endpoint)
        registry.makeCounter(descriptor: Self.ocrolusRequestsDescriptor, labels: [("endpoint", endpoint), ("code", record.codeLabel)])
            .increment()
        registry.makeValueHistogram(descriptor: Self.ocrolusSecondsDescriptor, labels: [("endpoint", endpoint)], buckets: Self.ocrolusBuckets)
            .record(record.seconds)
        limiterWait.record(record.limiterWaitSeconds)
    }

    /// `analytics/summary` → `analytics_summary`; anything unexpected collapses to `other`.
    static func endpointLabel(_ endpoint: String) -> String {
        let label = endpoint.replacingOccurrences(of: "/", with: "_")
        let allowed = ["book_status", "token"] + AnalyticsEndpoint.allCases.map { "analytics_\($0.rawValue)" }
        return allowed.contains(label) ? label : "other"
    }

    /// A status call made for `reason`.
    public func polled(_ reason: PollReason) { polls[reason]?.increment() }
    /// An analytics attempt's outcome.
    public func analytics(_ outcome: RetrievalOutcome) { retrievals[outcome]?.increment() }
    /// An analytics answer 425.
    public func analyticsNotReady() { notReady.increment() }
    /// A generation retrieved `seconds` after it was seen finished.
    public func completed(afterSeconds seconds: TimeInterval) { completion.record(max(0, seconds)) }
    /// The webhook loss estimate now.
    public func webhookLoss(_ ratio: Double) { webhookLossRatio.set(to: ratio) }
    /// An analytics outcome discarded: the worker's claim on the job was lost (lease lapsed, superseded).
    public func lateResult() { lateResults.increment() }
    /// A status call that failed, by kind.
    public func pollFailed(_ kind: PollFailure) { pollFailures[kind]?.increment() }
    /// A delivery about an untracked Book.
    public func untrackedWebhook() { untrackedWebhooks.increment() }
    /// Statuses this build does not know, in one answer.
    public func unknownStatuses(_ count: Int) { if count > 0 { unknownStatus.increment(by: Int64(count)) } }

    /// Sets the gauges that describe the database and the service at scrape time.
    public func update(_ gauges: StoreGauges) {
        for phase in BookPhase.allCases { books[phase]?.set(to: Double(gauges.books[phase] ?? 0)) }
        inboxPending.set(to: Double(gauges.inboxPending))
        pollsOverdue.set(to: Double(gauges.pollsOverdue))
    }

    /// The documents gauge (`DocumentGaugeRefresher`, in the background: a scan kept off the scrape).
    public func update(documents counts: [DocumentProgress: Int]) {
        for progress in DocumentProgress.allCases { documents[progress]?.set(to: Double(counts[progress] ?? 0)) }
    }

    /// The service gauges: readiness and the time since the last webhook.
    public func update(health: ServiceHealth.Snapshot, startedAt: Date, now: Date) {
        webhookSilence.set(to: max(0, now.timeIntervalSince(health.lastWebhookAt ?? startedAt)))
        ready.set(to: health.databaseWritable ? 1.0 : 0.0)
    }

    /// The Prometheus text exposition of everything registered.
    public func exposition() -> [UInt8] { registry.emitToBuffer() }
}

/// Reads Prometheus text back into samples (`series` → value), `series` written as exposed, for
/// example `bookwatch_polls_total{reason="scheduled"}`. For tests, the demo's summary and scripts
/// that check a scrape; comments and malformed lines are skipped.
public enum PrometheusSamples {
    /// The samples of a Prometheus text, by series.
    public static func parse(_ text: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }

    /// The sum of every series of `name` whose labels include all of `matching` (e.g. `code="429"`).
    public static func sum(_ samples: [String: Double], _ name: String, matching: [String] = []) -> Double {
        samples.filter { series, _ in
            (series == name || series.hasPrefix(name + "{")) && matching.allSatisfy { series.contains($0) }
        }.values.reduce(0, +)
    }
}
