import BookWatchClocks
import BookWatchCore
import Foundation
import OcrolusAPI

/// The fake Ocrolus: a seeded scenario on an injected clock, answering the API subset bookwatch
/// uses and producing webhook deliveries, with fault injection and counters.
///
/// It is transport-free: `handle(_:)` answers one request (the Hummingbird server and the
/// in-process transport both call it), and the webhook sender asks for due deliveries.
public actor OcrolusSimulation {
    /// The organisation simulated.
    public nonisolated let config: SimulationConfig
    /// The scenario clock.
    public nonisolated let clock: any WallClock
    /// Stamps `Webhook-Timestamp`: the real clock in server mode (a sped-up scenario clock would
    /// put stamps outside any receiver's tolerance); the scenario clock in virtual runs.
    public nonisolated let timestampClock: any WallClock
    /// The Books and their times, drawn from the seed.
    public nonisolated let scenario: Scenario
    let booksByUUID: [BookUUID: Int]
    let booksByPK: [Int: Int]
    var rng: SeededRandom
    var counters: SimulationStats
    var tokens: [String: Date] = [:]
    var issuedTokens = 0
    var rateTAT: Double = 0
    /// Faults in force now (start from `config.faults`; tests change them mid-run).
    public private(set) var faults: FaultConfig
    /// Scenario events not yet turned into deliveries, in time order.
    var pendingEvents: [SimEvent]
    var nextEvent = 0
    /// Deliveries waiting for their time, kept sorted by `dueAt`.
    var deliveries: [WebhookDelivery] = []
    var nextDeliveryID = 0
    var registrations: [Int: WebhookRegistration] = [:]
    var nextRegistrationID = 1
    /// What each registration was sent (`GET /webhook/{id}/events`), newest last, at most
    /// `deliveryLogLimit` each.
    var deliveryLog: [Int: [[String: Any]]] = [:]
    static let deliveryLogLimit = 1000
    /// Ocrolus allows five org-level webhooks per organisation.
    static let registrationLimit = 5

    /// A simulation of `config` on `clock` (webhook timestamps from `timestampClock`, else `clock`).
    public init(config: SimulationConfig, clock: any WallClock, timestampClock: (any WallClock)? = nil) {
        self.config = config
        self.clock = clock
        self.timestampClock = timestampClock ?? clock
        scenario = Scenario(config: config)
        booksByUUID = Dictionary(uniqueKeysWithValues: scenario.books.map { ($0.uuid, $0.index) })
        booksByPK = Dictionary(uniqueKeysWithValues: scenario.books.map { ($0.pk, $0.index) })
        // Faults draw from their own stream so the scenario does not depend on traffic.
        rng = SeededRandom(seed: config.seed ^ 0xFA17_5EED)
        counters = SimulationStats(now: "", books: config.books)
        faults = config.faults
        pendingEvents = config.webhooksEnabled ? scenario.events() : []
    }

    /// Seconds since the scenario start.
    var t: Double { clock.now().timeIntervalSince(config.start) }

    func date(_ seconds: Double) -> Date { config.start.addingTimeInterval(seconds) }

    /// Changes the faults in force from now on.
    public func setFaults(_ faults: FaultConfig) { self.faults = faults }

    /// Revokes every issued token (the next API call answers 401).
    public func revokeTokens() { tokens.removeAll() }

    /// The counters and the ground truth now.
    public func stats() -> SimulationStats {
        var stats = counters
        let now = t
        stats.now = BookStatusStamp.rfc3339(clock.now())
        stats.truth = scenario.books.map { book in
            SimulationStats.BookTruth(
                uuid: book.uuid.rawValue,
                pk: book.pk,
                status: book.bookStatus(at: now).rawValue,
                generation: book.generation(at: now),
                finishedGenerations: book.finishedGenerations,
                finishedByNow: book.generations.filter { g in g.verifiedAt <= now && (book.deletedAt.map { g.verifiedAt < $0 } ?? true) }.count,
                verifiedAt: book.generations.map { BookStatusStamp.rfc3339(date($0.verifiedAt)) },
                analyticsReadyAt: book.generations.map { BookStatusStamp.rfc3339(date($0.analyticsReadyAt)) },
                deletedAt: book.deletedAt.map { BookStatusStamp.rfc3339(date($0)) },
                flavour: book.flavour.rawValue
            )
        }
        return stats
    }

    /// When every Book has finished (or been deleted) and its analytics are ready, in virtual time.
    public nonisolated var settledAt: Date {
        let last =
            scenario.books.map { book -> Double in
                let ends = book.generations.map(\.analyticsReadyAt) + book.documents.map(\.finishAt)
                return min(ends.max() ?? 0, book.deletedAt ?? .infinity)
            }.max() ?? 0
        return config.start.addingTimeInterval(last)
    }
}

/// RFC 3339 stamps for the simulator's JSON.
enum BookStatusStamp {
    static func rfc3339(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt)) }
}
