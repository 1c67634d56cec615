import Foundation

/// Which webhook payloads the simulated organisation sends.
public enum WebhookFlavour: String, Sendable, CaseIterable, Codable {
    /// Organization-level: dotted event names with `book_uuid`.
    case org
    /// Account-level (legacy): `DOC_VERIFIED`/`BOOK_VERIFIED` and thin bodies with only pks.
    case account
    /// Each Book uses one or the other.
    case mixed
}

/// Everything that can go wrong, as fractions in `0...1` (drawn from the seeded generator).
public struct FaultConfig: Sendable, Codable, Equatable {
    /// Webhooks never sent at all.
    public var webhookDrop: Double = 0
    /// `webhookDrop` applies to events this many seconds into the scenario and later (an outage
    /// that starts once webhooks have earned trust).
    public var webhookDropFrom: TimeInterval = 0
    /// Webhooks sent twice (the second with its own request id).
    public var webhookDuplicate: Double = 0
    /// Webhooks held back by up to `maxWebhookDelay`, so they arrive out of order.
    public var webhookDelay: Double = 0
    /// The longest hold-back of a delayed webhook.
    public var maxWebhookDelay: TimeInterval = 300
    /// API answers replaced by 500/502/503/504.
    public var api5xx: Double = 0
    /// API answers replaced by 429.
    public var api429: Double = 0
    /// Of the 429s, the fraction that carry `Retry-After` (half of those as an HTTP date).
    public var retryAfterFraction: Double = 0.5
    /// API answers replaced by a gateway's bare 404 (an HTML page, no Ocrolus error code): never
    /// a sign that a Book is gone.
    public var bareNotFound: Double = 0
    /// API answers that leave late: the view is taken when the request arrives and returned after
    /// a uniform delay of up to this many seconds of the simulation's clock (virtual runs).
    public var answerDelay: TimeInterval = 0
    /// Only status answers (`/v1/book/status`) are late; analytics answer at once.
    public var answerDelayStatusOnly = false
    /// Latency added to every API answer in server mode (seconds of real time).
    public var latency: TimeInterval = 0
    /// Status answers about a Book still processing that say `VERIFIED` anyway (an inconsistent
    /// snapshot: a Document still in progress), as Ocrolus's own views sometimes lag.
    public var earlyVerified: Double = 0
    /// One Book's status calls refused with 403 / code 2102 (no permission) for a while, as when
    /// an API user loses access to a Book and gets it back (nil: never).
    public var statusRefused: StatusRefusal? = nil
    /// An enforced organisation-wide rate limit answering 429 (nil: none).
    public var rateLimit: Double? = nil
    /// The burst of that rate limit.
    public var rateBurst: Double = 25

    /// No faults.
    public init() {}

    /// No faults at all.
    public static var none: FaultConfig { FaultConfig() }

    /// The demo's preset: lossy webhooks, duplicates, reordering, 5xx and 429s.
    public static var demo: FaultConfig {
        var faults = FaultConfig()
        faults.webhookDrop = 0.3
        faults.webhookDuplicate = 0.2
        faults.webhookDelay = 0.2
        faults.api5xx = 0.1
        faults.api429 = 0.05
        return faults
    }
}

/// A window of scenario time in which the status endpoint refuses one Book (`FaultConfig.statusRefused`).
public struct StatusRefusal: Sendable, Codable, Equatable {
    /// The Book's index in the scenario.
    public var book: Int
    /// Seconds into the scenario.
    public var from: TimeInterval
    /// Seconds into the scenario the refusal ends.
    public var until: TimeInterval

    /// A refusal of Book `book`'s status calls from `from` until `until`.
    public init(book: Int, from: TimeInterval, until: TimeInterval) {
        self.book = book
        self.from = from
        self.until = until
    }
}

/// The shape of a simulated organisation.
public struct SimulationConfig: Sendable {
    /// How many Books.
    public var books: Int = 20
    /// The seed every draw comes from.
    public var seed: UInt64 = 1
    /// Virtual time at which the scenario starts.
    public var start: Date = Date(timeIntervalSince1970: 1_774_000_000)
    /// The webhook flavour Books send (org-level, account-level or mixed).
    public var flavour: WebhookFlavour = .org
    /// Signs deliveries when set (16 to 128 characters).
    public var webhookSecret: String? = nil
    /// Send no webhooks at all.
    public var webhooksEnabled = true
    /// The events the configured target subscribes (nil: every event), as an organisation that
    /// registered only some of them in the Dashboard.
    public var subscribedEvents: Set<String>? = nil
    /// The faults injected.
    public var faults = FaultConfig()
    /// Books are created at random over this many seconds from the start.
    public var bookSpread: TimeInterval = 600
    /// How many documents a Book has.
    public var documentsPerBook: ClosedRange<Int> = 1...5
    /// How long one document takes to process.
    public var processingTime: ClosedRange<Double> = 60...1800
    /// From VERIFIED to analytics ready (425 before).
    public var analyticsDelay: ClosedRange<Double> = 30...300
    /// Documents rejected.
    public var rejectFraction = 0.1
    /// Documents that fail.
    public var failFraction = 0.03
    /// Books that get a new document some time after VERIFIED.
    public var reopenFraction = 0.15
    /// How long after VERIFIED a reopen comes.
    public var reopenAfter: ClosedRange<Double> = 300...3600
    /// At most this many reopens per Book (each with `reopenFraction`'s chance after the last).
    public var maxReopens = 1
    /// Books whose status answers use the older `BOOK_COMPLETE` for a finished Book.
    public var bookCompleteFraction = 0.0
    /// Books deleted at some point.
    public var deleteFraction = 0.05
    /// Lifetime of issued tokens (virtual seconds).
    public var tokenLifetime: TimeInterval = 3600
    /// Enriched transactions per document of a generation: `enriched_txns` answers them in pages
    /// of the `limit` asked (no total given, so a client must ask until a short page).
    public var transactionsPerDocument = 150
    /// Credentials the token endpoint accepts (nil: any).
    public var clientID: String? = nil
    /// The secret the token endpoint accepts (nil: any).
    public var clientSecret: String? = nil
    /// Delays between a failed delivery and its retries (Ocrolus: about 3 retries over minutes).
    public var webhookRetryDelays: [TimeInterval] = [30, 120, 300]
    /// A delivery not answered within this long counts as failed.
    public var webhookTimeout: TimeInterval = 5

    /// The default organisation: 20 Books, seed 1, no faults.
    public init() {}
}
