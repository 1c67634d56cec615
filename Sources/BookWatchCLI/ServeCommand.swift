import ArgumentParser
import BookWatchClocks
import BookWatchCore
import BookWatchService
import BookWatchStore
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
            Every setting is an environment variable (docs/configuration.md; `bookwatch config` prints the effective \
            values and where each came from). OCROLUS_CLIENT_ID and OCROLUS_CLIENT_SECRET (or _FILE) are required. \
            Flags override the environment, which overrides the --config file. SIGTERM or SIGINT shut down gracefully.
            """
    )

    @OptionGroup var options: ServeOptions

    func run() async throws {
        let context = CLIContext.current
        let layers = try options.layers(context)
        let environment = layers.merged
        let settings: IngressSettings
        let watcherSettings: WatcherSettings
        let verifier: WebhookVerifier?
        let logging: (format: LogFormat, level: Logger.Level)
        let exporter: ResultExporter?
        do {
            settings = try IngressSettings.resolve(environment: environment, host: nil, port: nil)
            watcherSettings = try WatcherSettings.resolve(environment: environment)
            logging = try ServeOptions.logging(environment)
            verifier = try settings.verifier()
            try settings.checkPortFree()
            exporter = try ServeOptions.exporter(environment)
        } catch {
            throw CLIError.usage(error.description)
        }
        let path = environment[DatabaseOptions.environmentName].flatMap { $0.isEmpty ? nil : $0 } ?? DatabaseOptions.defaultPath
        let location = DatabaseLocation(path)
        let setting = "\(layers.source(of: DatabaseOptions.environmentName)) BOOKWATCH_DATABASE=\(location.redacted)"
        let logger = LineLogHandler.logger(label: "bookwatch", format: logging.format, level: logging.level)
        let store = try await StoreOpener.open(
            path,
            setting: setting,
            schedule: watcherSettings.pollSchedule,
            busyTimeout: 2,
            logger: logger
        )

        logger.info(
            "starting bookwatch serve",
            metadata: [
                "version": "\(BookWatchVersion.current)",
                "config": "\(settings.redactedSummary) \(watcherSettings.redactedSummary) database=\(location.redacted)",
                "config_file": "\(layers.filePath ?? "none")",
            ]
        )
        if settings.allow.isEmpty && verifier == nil && settings.basicCredentials == nil {
            logger.warning("webhooks are accepted from any source without a signature: set BOOKWATCH_WEBHOOK_SECRET or BOOKWATCH_WEBHOOK_ALLOW")
        }
        let clock = SystemClock()
        let health = ServiceHealth(startedAt: clock.now(), webhookSecretFingerprints: settings.webhookSecrets.map(WebhookVerifier.fingerprint))
        let metrics = BookWatchMetrics()
        // Once per process, here only: Hummingbird's HTTP metrics land in the same registry.
        MetricsSystem.bootstrap(HTTPMetricsFactory(registry: metrics.registry))
        let writer = InboxWriter(store: store, health: health, logger: logger)
        let probe = DatabaseProbe(store: store, health: health, clock: clock, logger: logger)
        await probe.probe()
        let ingress = WebhookIngress(
            bodyLimit: settings.bodyLimit,
            access: settings.accessPolicy,
            verifier: verifier,
            writer: writer,
            health: health,
            clock: clock,
            logger: logger,
            observe: { metrics.webhookAnswered($0, seconds: $1) }
        )
        let watcherConfiguration = watcherSettings.watcherConfiguration
        // Replicas on PostgreSQL draw every call from the deployment's one budget (the
        // organisation's rate); a single SQLite node keeps its own bucket.
        var sharedBudget: StoreRateBudget?
        // Not a setting (the budget test's baseline, scripts/budget-test.sh): each replica its own bucket, as before.
        let ownBucket = layers.environment["BOOKWATCH_BENCH_OWN_BUCKET"] == "1"
        if case .postgres = location, let budgetStore = store as? any RateBudgetStore {
            if ownBucket {
                logger.warning(
                    "BOOKWATCH_BENCH_OWN_BUCKET=1: this replica spends the whole rate limit on its own (a benchmark's baseline, never a deployment)"
                )
            } else {
                sharedBudget = StoreRateBudget(store: budgetStore, owner: watcherConfiguration.owner, logger: logger)
                logger.info(
                    "Ocrolus calls drawn from the deployment's shared rate budget",
                    metadata: ["rate": "\(watcherSettings.rate)", "burst": "\(watcherSettings.burst)"]
                )
            }
        }
        let client = OcrolusClient(
            configuration: watcherSettings.ocrolusConfiguration,
            transport: AsyncHTTPClientTransport(),
            limiter: RateLimiter(rate: watcherSettings.rate, burst: watcherSettings.burst, clock: clock, budget: sharedBudget),
            clock: clock,
            logger: logger,
            observe: { metrics.ocrolusRequest($0) }
        )
        let watcher = Watcher(
            store: store,
            client: client,
            clock: clock,
            configuration: watcherConfiguration,
            health: health,
            logger: logger,
            metrics: metrics
        )
        let hookCommand = environment["BOOKWATCH_ON_COMPLETE"].flatMap { $0.isEmpty ? nil : $0 }
        let hook =
            (hookCommand == nil && exporter == nil)
            ? nil
            : Optional(
                CompletionHook(
                    command: hookCommand,
                    exporter: exporter,
                    store: store,
                    logger: logger,
                    owner: watcherConfiguration.owner,
                    lease: max(900, watcherSettings.onCompleteTimeout + 60),
                    timeout: watcherSettings.onCompleteTimeout
                )
            )
        // Not a setting (the ingress benchmark's switch): read from the process environment.
        let bareBenchmarkRoute = layers.environment["BOOKWATCH_BENCH_BARE_ROUTE"] == "1"
        var services: [any Service] = [
            writer, probe, WatcherService(watcher: watcher, clock: clock, hook: hook),
            DocumentGaugeRefresher(store: store, metrics: metrics, clock: clock, logger: logger),
        ]
        let router: Router<IngressRequestContext>
        if let adminPort = settings.adminPort {
            router = BookWatchRoutes.publicRouter(ingress: ingress, bareBenchmarkRoute: bareBenchmarkRoute)
            services.append(
                Application(
                    router: BookWatchRoutes.adminRouter(store: store, health: health, metrics: metrics, clock: clock),
                    server: BookWatchRoutes.httpServer(),
                    configuration: .init(address: .hostname(settings.host, port: adminPort), serverName: "bookwatch-admin"),
                    logger: logger
                )
            )
        } else {
            router = BookWatchRoutes.router(ingress: ingress, store: store, health: health, metrics: metrics, bareBenchmarkRoute: bareBenchmarkRoute)
        }
        services.append(WebhookSetupReport(client: client, publicURL: settings.publicURL, secretConfigured: verifier != nil, logger: logger))
        let app = Application(
            router: router,
            server: BookWatchRoutes.httpServer(),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "bookwatch"),
            services: services,
            logger: logger
        )
        do {
            try await app.runService()
        } catch {
            try? await store.close()
            throw CLIError.runtime("serve stopped: \(error)")
        }
        try await store.close()
        logger.info("bookwatch serve stopped cleanly")
    }
}

/// The options `serve` and `config` share. Each flag overrides the environment variable of the
/// same setting, which overrides the config file (`SettingCatalog` names them all).
struct ServeOptions: ParsableArguments {
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Address to listen on (env BOOKWATCH_HOST; default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (env BOOKWATCH_PORT; default 8080).") var port: Int?
    @Option(
        name: .customLong("admin-port"),
        help:
            "Port of a separate admin listener for /metrics, /books/{uuid}, /healthz, /readyz (env BOOKWATCH_ADMIN_PORT); the public port then serves only webhooks."
    )
    var adminPort: Int?
    @Option(
        name: .customLong("config"),
        help: ArgumentHelp(
            "A file of NAME=value lines with the environment names (env BOOKWATCH_CONFIG); the environment and flags override it.",
            valueName: "path"
        )
    )
    var configFile: String?
    @Option(
        name: .customLong("on-complete"),
        help: ArgumentHelp(
            "Command run (sh -c) once per stored retrieval, with BOOKWATCH_BOOK_UUID, BOOKWATCH_GENERATION and BOOKWATCH_IDEMPOTENCY_KEY (env BOOKWATCH_ON_COMPLETE).",
            valueName: "command"
        )
    )
    var onComplete: String?
    @Option(
        name: .customLong("export-dir"),
        help: ArgumentHelp(
            "Write each stored retrieval's results as JSON files into this directory (env BOOKWATCH_EXPORT_DIR), as bookwatch analytics export does.",
            valueName: "dir"
        )
    )
    var exportDir: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (env BOOKWATCH_LOG_LEVEL; default info).")
    var logLevel: String?
    @Option(name: .customLong("log-format"), help: "text or json (env BOOKWATCH_LOG_FORMAT; default text).")
    var logFormat: String?

    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level '\(logLevel)' is not a log level") }
        if let logFormat, LogFormat(rawValue: logFormat) == nil { throw ValidationError("--log-format '\(logFormat)' is not text or json") }
    }

    /// Flags by the environment name of their setting.
    var flags: [String: String] {
        var flags: [String: String] = [:]
        flags["BOOKWATCH_DATABASE"] = database.database
        flags["BOOKWATCH_HOST"] = host
        flags["BOOKWATCH_PORT"] = port.map(String.init)
        flags["BOOKWATCH_ADMIN_PORT"] = adminPort.map(String.init)
        flags["BOOKWATCH_ON_COMPLETE"] = onComplete
        flags["BOOKWATCH_EXPORT_DIR"] = exportDir
        flags["BOOKWATCH_LOG_LEVEL"] = logLevel
        flags["BOOKWATCH_LOG_FORMAT"] = logFormat
        return flags
    }

    func layers(_ context: CLIContext) throws -> LayeredConfiguration {
        do {
            return try LayeredConfiguration(environment: context.environment, flags: flags, configPath: configFile)
        } catch {
            throw CLIError.usage(error.description)
        }
    }

    /// The `--export-dir` writer, or nil; a directory that is missing or not writable stops startup.
    static func exporter(_ environment: [String: String]) throws(ConfigurationError) -> ResultExporter? {
        guard let directory = environment["BOOKWATCH_EXPORT_DIR"].flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
        do {
            let exporter = try ResultExporter(directory: directory)
            exporter.sweepAbandoned()
            return exporter
        } catch {
            throw ConfigurationError(setting: "BOOKWATCH_EXPORT_DIR", problem: error.description)
        }
    }

    static func logging(_ environment: [String: String]) throws(ConfigurationError) -> (format: LogFormat, level: Logger.Level) {
        let levelText = environment["BOOKWATCH_LOG_LEVEL"].flatMap { $0.isEmpty ? nil : $0 } ?? "info"
        let formatText = environment["BOOKWATCH_LOG_FORMAT"].flatMap { $0.isEmpty ? nil : $0 } ?? "text"
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw ConfigurationError(
                setting: "BOOKWATCH_LOG_LEVEL",
                problem: "'\(levelText)' is not trace, debug, info, notice, warning, error or critical"
            )
        }
        guard let format = LogFormat(rawValue: formatText.lowercased()) else {
            throw ConfigurationError(setting: "BOOKWATCH_LOG_FORMAT", problem: "'\(formatText)' is not text or json")
        }
        return (format, level)
    }
}
