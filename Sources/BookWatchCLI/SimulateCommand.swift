import ArgumentParser
import BookWatchClocks
import Foundation
import Hummingbird
import Logging
import OcrolusAPI
import OcrolusSimulator
import ServiceLifecycle

/// Fault flags shared by `simulate` and `demo`.
struct FaultOptions: ParsableArguments {
    @Option(name: .customLong("drop"), help: "Fraction of webhooks never sent (0-1).") var drop: Double = 0
    @Option(name: .customLong("duplicate"), help: "Fraction of webhooks sent twice (0-1).") var duplicate: Double = 0
    @Option(name: .customLong("reorder"), help: "Fraction of webhooks delayed up to 5 minutes, arriving out of order (0-1).")
    var reorder: Double = 0
    @Option(name: .customLong("api-5xx"), help: "Fraction of API answers replaced by 5xx (0-1).") var api5xx: Double = 0
    @Option(name: .customLong("api-429"), help: "Fraction of API answers replaced by 429 (0-1).") var api429: Double = 0
    @Option(name: .customLong("retry-after"), help: "Fraction of 429s carrying Retry-After (0-1).") var retryAfter: Double = 0.5
    @Option(name: .customLong("rate-limit"), help: "Enforce this many API requests per real second for the organisation (429 above).")
    var rateLimit: Double?
    @Option(name: .customLong("rate-burst"), help: "The burst of --rate-limit.") var rateBurst: Double = 25
    @Option(name: .customLong("latency"), help: "Seconds of latency added to each API answer.") var latency: Double = 0

    func validate() throws {
        for (name, value) in [
            ("--drop", drop), ("--duplicate", duplicate), ("--reorder", reorder), ("--api-5xx", api5xx),
            ("--api-429", api429), ("--retry-after", retryAfter),
        ] where !(0...1).contains(value) {
            throw ValidationError("\(name) must be a fraction between 0 and 1, not \(value)")
        }
        if let rateLimit, rateLimit <= 0 { throw ValidationError("--rate-limit must be positive, not \(rateLimit)") }
        if rateBurst < 1 { throw ValidationError("--rate-burst must be at least 1, not \(rateBurst)") }
        if latency < 0 { throw ValidationError("--latency must be 0 or more, not \(latency)") }
    }

    var faults: FaultConfig {
        var faults = FaultConfig()
        faults.webhookDrop = drop
        faults.webhookDuplicate = duplicate
        faults.webhookDelay = reorder
        faults.api5xx = api5xx
        faults.api429 = api429
        faults.retryAfterFraction = retryAfter
        faults.rateLimit = rateLimit
        faults.rateBurst = rateBurst
        faults.latency = latency
        return faults
    }
}

/// `bookwatch simulate`: the built-in Ocrolus simulator as a server.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the built-in Ocrolus simulator (API, token endpoint, webhooks) as a server.",
        discussion: "Counters and ground truth: GET /_sim/stats. Stops on SIGINT or SIGTERM."
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 9400
    @Option(help: "Number of simulated Books.") var books = 20
    @Option(help: "Seed of the scenario (the same seed gives the same Books and times).") var seed: UInt64 = 1
    @Option(
        name: .customLong("webhook-url"),
        help: "Where to POST webhooks; several, comma-separated, take attempts in turn (replicas behind a load balancer). None: no webhooks are sent."
    )
    var webhookURL: String?

    var webhookURLs: [String] {
        (webhookURL ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
    @Option(name: .customLong("webhook-secret"), help: "Sign webhooks with this secret (16-128 characters).")
    var webhookSecret: String?
    @Option(help: "Webhook payloads: org, account or mixed.") var flavour: WebhookFlavour = .org
    @Option(help: "How much faster than real time the scenario runs.") var speed: Double = 10
    @OptionGroup var faultOptions: FaultOptions

    func validate() throws {
        if books < 1 { throw ValidationError("--books must be at least 1, not \(books)") }
        if !(0...65535).contains(port) { throw ValidationError("--port must be 0-65535, not \(port)") }
        if speed <= 0 { throw ValidationError("--speed must be positive, not \(speed)") }
        if let webhookSecret, !(16...128).contains(webhookSecret.count) {
            throw ValidationError("--webhook-secret must be 16 to 128 characters, not \(webhookSecret.count)")
        }
        for url in webhookURLs where URL(string: url)?.host == nil {
            throw ValidationError("--webhook-url '\(url)' is not an http(s) URL")
        }
    }

    func run() async throws {
        let context = CLIContext.current
        var config = SimulationConfig()
        config.books = books
        config.seed = seed
        config.flavour = flavour
        config.webhookSecret = webhookSecret
        config.faults = faultOptions.faults
        config.webhooksEnabled = !webhookURLs.isEmpty
        config.start = context.now()
        let clock = ScaledClock(origin: config.start, factor: speed)
        let simulation = OcrolusSimulation(config: config, clock: clock, timestampClock: SystemClock())
        // Webhooks registered through the management API (`bookwatch webhooks register`) are
        // delivered to their own URLs, with or without a configured --webhook-url.
        let target: any WebhookTarget =
            webhookURLs.isEmpty
            ? RegisteredOnlyWebhookTarget(timeout: config.webhookTimeout)
            : SpreadWebhookTarget(urls: webhookURLs, timeout: config.webhookTimeout)
        let services: [any Service] = [WebhookSender(simulation: simulation, target: target)]
        let host = host
        let summary =
            "\(books) books, seed \(seed), \(flavour.rawValue) webhooks"
            + (webhookURL.map { " to \($0)\(webhookSecret == nil ? "" : " (signed)")" } ?? " (none: no --webhook-url)")
            + ", speed x\(speed)"
        let app = SimulatorServer.application(
            simulation: simulation,
            host: host,
            port: port,
            latency: faultOptions.latency,
            services: services,
            logger: Logger(label: "ocrolus-sim"),
            onServerRunning: { port in
                context.print("ocrolus simulator on http://\(host):\(port): \(summary)")
                context.print(
                    "  token:  curl -X POST http://\(host):\(port)/oauth/token -d '{\"grant_type\":\"client_credentials\",\"client_id\":\"x\",\"client_secret\":\"y\"}'"
                )
                if let first = simulation.scenario.books.first {
                    context.print("  status: curl -H 'Authorization: Bearer TOKEN' 'http://\(host):\(port)/v1/book/status?book_uuid=\(first.uuid)'")
                }
                context.print("  stats:  curl http://\(host):\(port)/_sim/stats")
            }
        )
        do {
            try await app.runService()
        } catch {
            throw CLIError.runtime("simulator on \(host):\(port): \(error)")
        }
    }
}

extension WebhookFlavour: ExpressibleByArgument {}
