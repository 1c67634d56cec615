import ArgumentParser
import BookWatchService
import BookWatchStore
import BookWatchCore
import Foundation
import Hummingbird
import Logging
import Metrics
import OcrolusAPI
import ServiceLifecycle

/// `bookwatch serve`: the long-running service.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the service: webhook ingress (POST /webhooks/ocrolus), /metrics, /healthz, /readyz, /books/{uuid}.",
        discussion: """
            Environment: OCROLUS_CLIENT_ID and OCROLUS_CLIENT_SECRET (or _FILE; required), OCROLUS_API_URL, OCROLUS_AUTH_URL, \
            BOOKWATCH_RATE_LIMIT, BOOKWATCH_RATE_BURST, BOOKWATCH_POLL_MIN_SECONDS, BOOKWATCH_POLL_MAX_SECONDS, BOOKWATCH_ANALYTICS, \
            BOOKWATCH_AUTO_TRACK, BOOKWATCH_HOST, BOOKWATCH_PORT, BOOKWATCH_DATABASE, BOOKWATCH_WEBHOOK_SECRET (comma-separated \
            for rotation; or BOOKWATCH_WEBHOOK_SECRET_FILE), BOOKWATCH_WEBHOOK_ALLOW (CIDRs), BOOKWATCH_TRUSTED_PROXIES, \
            BOOKWATCH_WEBHOOK_BASIC_AUTH (user:password), BOOKWATCH_WEBHOOK_MAX_BYTES, BOOKWATCH_WEBHOOK_TOLERANCE_SECONDS. \
            Flags override the environment. SIGTERM or SIGINT shut down gracefully.
            """)

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Address to listen on (env BOOKWATCH_HOST; default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (env BOOKWATCH_PORT; default 8080).") var port: Int?
    @Option(name: .customLong("config"), help: ArgumentHelp(
        "A file of NAME=value lines with the environment names (env BOOKWATCH_CONFIG); the environment and flags override it.",
        valueName: "path"))
    var configFile: String?
    @Option(name: .customLong("on-complete"), help: ArgumentHelp(
        "Command run (sh -c) once per stored retrieval, with BOOKWATCH_BOOK_UUID, BOOKWATCH_GENERATION and BOOKWATCH_IDEMPOTENCY_KEY (env BOOKWATCH_ON_COMPLETE).",
        valueName: "command"))
    var onComplete: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level '\(logLevel)' is not a log level") }
    }

    func run() async throws {
        var context = CLIContext.current
        do {
            context.environment = try ConfigFile.merged(environment: context.environment, path: configFile)
        } catch {
            throw CLIError.usage(error.description)
        }
        let settings: IngressSettings
        let watcherSettings: WatcherSettings
        let verifier: WebhookVerifier?
        do {
            settings = try IngressSettings.resolve(environment: context.environment, host: host, port: port)
            watcherSettings = try WatcherSettings.resolve(environment: context.environment)
            verifier = try settings.verifier()
            try settings.checkPortFree()
        } catch {
            throw CLIError.usage(error.description)
        }
        let (path, setting) = database.resolvedPath(context)
        let store: SQLiteBookStore
        do {
            store = try SQLiteBookStore(
                path: path, schedule: watcherSettings.pollSchedule,
                busyTimeout: 2)
        } catch {
            throw CLIError.opening(error, setting: setting)
        }

        var logger = Logger(label: "bookwatch")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        logger.info("starting bookwatch serve", metadata: [
            "config": "\(settings.redactedSummary) \(watcherSettings.redactedSummary) database=\(path)",
        ])
        if settings.allow.isEmpty && verifier == nil && settings.basicCredentials == nil {
            logger.warning("webhooks are accepted from any source without a signature: set BOOKWATCH_WEBHOOK_SECRET or BOOKWATCH_WEBHOOK_ALLOW")
        }
        let clock = SystemClock()
        let health = ServiceHealth(startedAt: clock.now())
        let metrics = BookWatchMetrics()
        // Once per process, here only: Hummingbird's HTTP metrics land in the same registry.
        MetricsSystem.bootstrap(HTTPMetricsFactory(registry: metrics.registry))
        let writer = InboxWriter(store: store, health: health, logger: logger)
        let probe = DatabaseProbe(store: store, health: health, clock: clock, logger: logger)
        await probe.probe()
        let ingress = WebhookIngress(
            bodyLimit: settings.bodyLimit, access: settings.accessPolicy, verifier: verifier, writer: writer, health: health,
            clock: clock, logger: logger, observe: { metrics.webhookAnswered($0, seconds: $1) })
        let client = OcrolusClient(
            configuration: OcrolusConfiguration(
                apiBaseURL: watcherSettings.apiURL, tokenURL: watcherSettings.authURL,
                credentials: .init(clientID: watcherSettings.clientID, clientSecret: watcherSettings.clientSecret)),
            transport: AsyncHTTPClientTransport(),
            limiter: RateLimiter(rate: watcherSettings.rate, burst: watcherSettings.burst, clock: clock), clock: clock, logger: logger,
            observe: { metrics.ocrolusRequest($0) })
        var watcherConfiguration = WatcherConfiguration()
        watcherConfiguration.analytics = watcherSettings.analytics
        watcherConfiguration.autoTrack = watcherSettings.autoTrack
        watcherConfiguration.analyticsRetry = RetryPolicy(
            base: min(15, watcherSettings.analyticsRetryMaximum), cap: watcherSettings.analyticsRetryMaximum, maxAttempts: 60)
        let watcher = Watcher(store: store, client: client, clock: clock, configuration: watcherConfiguration, health: health, logger: logger,
                              metrics: metrics)
        let hookCommand = onComplete ?? context.environment["BOOKWATCH_ON_COMPLETE"].flatMap { $0.isEmpty ? nil : $0 }
        let hook = hookCommand.map { CompletionHook(command: $0, store: store, logger: logger) }
        let app = Application(
            router: BookWatchRoutes.router(
                ingress: ingress, store: store, health: health, metrics: metrics,
                bareBenchmarkRoute: context.environment["BOOKWATCH_BENCH_BARE_ROUTE"] == "1"),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "bookwatch"),
            services: [writer, probe, WatcherService(watcher: watcher, clock: clock, hook: hook)],
            logger: logger)
        do {
            try await app.runService()
        } catch {
            try? store.close()
            throw CLIError.runtime("serve stopped: \(error)")
        }
        try store.close()
        logger.info("bookwatch serve stopped cleanly")
    }
}
