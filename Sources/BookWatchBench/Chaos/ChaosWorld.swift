import BookWatchCore
import Foundation
import OcrolusAPI
import OcrolusSimulator

/// Everything one seed draws before the run: Ocrolus's Books and how they behave, bookwatch's
/// settings, and the operator's habits. The same seed always draws the same world.
struct ChaosWorld: Sendable {
    var seed: UInt64
    var simulation: SimulationConfig
    var schedule: PollSchedule
    var lease: TimeInterval
    var endpoints: [AnalyticsEndpoint]
    var replicas: Int
    var autoTrack: Bool
    var trustWebhooks: Bool
    var rate: Double
    var burst: Double
    /// Chance that the operator tracks a Book (`--new`) when it is created.
    var trackAtCreation: Double
    /// One Book refused by the status endpoint for a while (kept across fault profiles).
    var refusal: StatusRefusal?
    /// How long processed rows are kept (`BOOKWATCH_RETAIN_DAYS`): an hour in some worlds, so
    /// pruning runs during the search.
    var retention: TimeInterval

    init(seed: UInt64, replicas: Int) {
        self.seed = seed
        var rng = SeededRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ 0xC4A0)
        var config = SimulationConfig()
        config.seed = seed
        config.books = 1 + Int(rng.next() % 5)
        config.bookSpread = rng.pick([0, 60, 600, 3600])
        let documents = rng.pick([1, 3, 8, 20])
        config.documentsPerBook = 1...documents
        let shortest = rng.pick([2.0, 30, 300])
        config.processingTime = shortest...(shortest * rng.pick([1.5, 5, 20]))
        // 425 windows from seconds to hours.
        config.analyticsDelay = rng.pick([0...5, 10...300, 600...7200, 0...14400])
        config.rejectFraction = rng.pick([0, 0.1, 0.4])
        config.failFraction = rng.pick([0, 0.05])
        config.reopenFraction = rng.pick([0, 0.3, 0.7])
        config.maxReopens = 1 + Int(rng.next() % 3)
        // Short: the reopen comes while the previous generation's job still waits on 425.
        config.reopenAfter = rng.pick([1...60, 60...900, 300...3600])
        config.deleteFraction = rng.pick([0, 0.1, 0.3])
        config.flavour = rng.pick([.org, .account, .mixed])
        config.bookCompleteFraction = rng.pick([0, 0.5])
        // Mostly signed; unsigned deliveries are unauthenticated: never a stand-in for a status call.
        config.webhookSecret = rng.chance(0.8) ? SimulatedDeployment.defaultWebhookSecret : nil
        config.faults = Self.faults(&rng)
        simulation = config
        let minimum = rng.pick([5.0, 30, 60])
        schedule = PollSchedule(minimum: minimum, maximum: minimum * rng.pick([4.0, 20, 30]), retention: 168 * 3600)
        lease = rng.pick([30, 120, 600])
        endpoints = rng.chance(0.7) ? [.summary] : [.summary, .cashFlowFeatures]
        self.replicas = replicas
        autoTrack = rng.chance(0.8)
        trustWebhooks = rng.chance(0.8)
        rate = rng.pick([1, 5, 20])
        burst = rng.pick([1, 5, 25])
        trackAtCreation = rng.pick([0, 0.5, 1])
        // Drawn from a stream of their own, so worlds drawn before these existed stay the same.
        var more = SeededRandom(seed: seed &* 0xD1B5_4A32_D192_ED03 &+ 0x5EF)
        refusal =
            more.chance(0.2)
            ? StatusRefusal(book: Int(more.next() % UInt64(config.books)), from: more.uniform(0...3600), until: 0) : nil
        if var window = refusal {
            window.until = window.from + more.pick([60.0, 600, 3600])
            refusal = window
        }
        simulation.faults.statusRefused = refusal
        retention = more.chance(0.2) ? 3600 : 30 * 86400
        // Some worlds fetch the paged endpoint instead: kills, 425s and reopens between pages.
        if endpoints.count > 1, more.chance(0.5) { endpoints = [.summary, .enrichedTransactions] }
        simulation.transactionsPerDocument = more.pick([50, 300, 900])
    }

    /// A fault profile: each run changes profile from time to time (bursts come and go).
    static func faults(_ rng: inout SeededRandom) -> FaultConfig {
        var faults = FaultConfig()
        faults.webhookDrop = rng.pick([0, 0, 0.3, 0.7, 1])
        faults.webhookDuplicate = rng.pick([0, 0.1, 0.3])
        faults.webhookDelay = rng.pick([0, 0.2, 0.5])
        faults.maxWebhookDelay = rng.pick([10, 300, 1200])
        faults.api5xx = rng.pick([0, 0, 0.05, 0.5])
        faults.api429 = rng.pick([0, 0, 0.05, 0.5])
        faults.bareNotFound = rng.pick([0, 0, 0.05, 0.3])
        faults.earlyVerified = rng.pick([0, 0, 0.2])
        return faults
    }

    /// The line that replays this world.
    func replay(steps: Int) -> String {
        "bookwatch bench chaos --seed \(seed) --steps \(steps) --replicas \(replicas)"
    }

    var summary: String {
        let c = simulation
        return "\(c.books) Books of 1-\(c.documentsPerBook.upperBound) docs, \(c.flavour.rawValue) webhooks, "
            + "reopens \(c.reopenFraction)x\(c.maxReopens), deletes \(c.deleteFraction), 425 \(Int(c.analyticsDelay.lowerBound))-\(Int(c.analyticsDelay.upperBound))s, "
            + "poll \(Int(schedule.minimum))-\(Int(schedule.maximum))s, lease \(Int(lease))s, rate \(rate)/\(Int(burst)), "
            + (refusal.map { "status refused for Book \($0.book) \(Int($0.from))-\(Int($0.until))s, " } ?? "")
            + (retention < 86400 ? "retention \(Int(retention))s, " : "")
            + "auto-track \(autoTrack), trust \(trustWebhooks), \(c.webhookSecret == nil ? "unsigned" : "signed") webhooks, endpoints \(endpoints.map(\.rawValue).joined(separator: "+"))"
    }
}

extension SeededRandom {
    mutating func pick<T>(_ choices: [T]) -> T { choices[Int(next() % UInt64(choices.count))] }
}
