import ArgumentParser
import BookWatchBench
import BookWatchCore
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import Foundation

/// `bookwatch bench`: benchmarks that print figures (docs/benchmarks.md). None of them fails on
/// timing; each compares against a baseline measured in the same run where one exists.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print figures (docs/benchmarks.md).",
        subcommands: [BenchStrategiesCommand.self, BenchScaleCommand.self, BenchFillCommand.self, BenchStoreCommand.self, BenchChaosCommand.self]
    )
}

/// `bookwatch bench fill`: a database of many Books in realistic states, for the scale figures
/// (and for trying `status` at scale).
struct BenchFillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fill",
        abstract: "Fill a database (SQLite or PostgreSQL) with tracked Books and Documents in a steady-state mix (70% complete, 20% processing, ...)."
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "How many Books.") var books = 100_000
    @Option(name: .customLong("documents-per-book"), help: "Average Documents per Book (1 to 2n-1, uniform).") var documentsPerBook = 10
    @Option(help: "Seed of the generator (the same seed gives the same database).") var seed: UInt64 = 1

    func validate() throws {
        guard books > 0 else { throw ValidationError("--books must be at least 1") }
        guard (1...1000).contains(documentsPerBook) else { throw ValidationError("--documents-per-book must be 1 to 1000") }
    }

    func run() async throws {
        let context = CLIContext.current
        let opened = try await database.openStore(context)
        let summary = try await using(opened) { opened in
            // Both stores run the same statements (`SQLStatementStore`).
            guard let store = opened as? any SQLStatementStore else { throw CLIError.runtime("this database cannot be filled") }
            // Never into a deployment's database: its replicas would poll Ocrolus for the fake Books.
            guard try await store.totals().isEmpty else {
                throw CLIError.runtime("\(database.resolvedPath(context).setting) already has Books: bench fill writes only into an empty database")
            }
            return try await store.fillForBenchmark(books: books, documentsPerBook: documentsPerBook, now: context.now(), seed: seed)
        }
        let states = BookPhase.allCases.compactMap { phase in summary.byState[phase].map { "\($0) \(phase.rawValue)" } }
        context.print(
            String(
                format: "filled %d Books, %d Documents in %.1f s (%@)",
                summary.books,
                summary.documents,
                summary.seconds,
                states.joined(separator: ", ")
            )
        )
    }
}

/// `bookwatch bench strategies`: bookwatch against a naive poller and a webhook-only design on the
/// same seeded scenarios, on the simulator's virtual clock.
struct BenchStrategiesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strategies",
        abstract: "Compare bookwatch (hybrid), a naive 30 s poller and webhook-only on the same simulated scenarios."
    )

    @Option(help: "Books per scenario.") var books = 1_000
    @Option(help: "Webhook loss fractions, comma-separated.") var loss = "0,0.3,1"
    @Option(help: "Strategies, comma-separated (hybrid, hybrid-strict, naive, webhook-only).") var strategies = "hybrid,naive,webhook-only"
    @Option(help: "Seed of the scenarios.") var seed: UInt64 = 1
    @Option(help: "Organisation rate limit, requests/s (enforced by the simulator, used by every strategy's limiter).") var rate = 5.0
    @Option(
        name: .customLong("loss-from"),
        help: ArgumentHelp(
            "Webhook loss starts this many virtual seconds in (0: from the start), e.g. an outage after webhooks earned trust.",
            valueName: "seconds"
        )
    )
    var lossFrom = 0.0
    @Option(
        help: ArgumentHelp(
            "The world beyond webhook loss: standard (docs/benchmarks.md's table), adversary (polls every 1-5 s, 10% 5xx, 5% bare 404s), slow-answers (status answers 0-8 s late), all-slow (every answer 0-8 s late).",
            valueName: "name"
        )
    )
    var world = "standard"

    func chosenWorld() throws -> StrategyWorld {
        guard let found = StrategyWorld.all.first(where: { $0.name == world }) else {
            throw ValidationError("--world '\(world)' is not one of \(StrategyWorld.all.map(\.name).joined(separator: ", "))")
        }
        return found
    }

    func losses() throws -> [Double] {
        try commaList(loss, { Double($0).flatMap { (0...1).contains($0) ? $0 : nil } }, invalid: { "--loss '\($0)' is not a fraction in 0...1" })
    }

    func chosen() throws -> [Strategy] {
        try commaList(strategies, Strategy.init(rawValue:)) {
            "--strategies: '\($0)' is not one of \(Strategy.allCases.map(\.rawValue).joined(separator: ", "))"
        }
    }

    func validate() throws {
        guard books > 0 else { throw ValidationError("--books must be at least 1") }
        guard rate > 0 else { throw ValidationError("--rate must be positive") }
        guard lossFrom >= 0 else { throw ValidationError("--loss-from must be at least 0") }
        _ = try losses()
        _ = try chosen()
        _ = try chosenWorld()
    }

    func run() async throws {
        let context = CLIContext.current
        let world = try chosenWorld()
        context.print(
            "bench strategies: \(books) Books, seed \(seed), \(rate) requests/s enforced; virtual clock"
                + (lossFrom > 0 ? "; loss from \(Int(lossFrom)) s" : "") + (world == .standard ? "" : "; world \(world.name)")
        )
        context.print(Self.header)
        for loss in try losses() {
            for strategy in try chosen() {
                let result = try await StrategyBench.run(
                    strategy,
                    books: books,
                    loss: loss,
                    seed: seed,
                    rate: rate,
                    lossFrom: lossFrom,
                    world: world
                )
                context.print(Self.row(result))
                context.print(
                    "      analytics ready -> stored: p50 \(Self.duration(result.readyDelayP50)), p95 \(Self.duration(result.readyDelayP95))"
                )
                if let since = result.sinceLoss {
                    context.print(
                        "      Books finished after the loss began: \(since.books), delay p50 \(Self.duration(since.p50)), p99 \(Self.duration(since.p99))"
                    )
                }
                if let split = result.sinceLossSplit {
                    context.print(
                        "      of those: finish -> first status answer showing it p50 \(Self.duration(split.seenP50)), p99 \(Self.duration(split.seenP99)); "
                            + "that answer -> stored p50 \(Self.duration(split.storedP50)), p99 \(Self.duration(split.storedP99))"
                    )
                }
                if !result.pollsByReason.isEmpty {
                    let parts = result.pollsByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                    context.print(
                        "      status calls by reason: " + parts.joined(separator: ", ")
                            + "; answered while the Book was finished: \(result.statusCallsWhileFinished)"
                    )
                }
            }
        }
    }

    static let header = "loss  strategy        completed    retrievals  dup  status/Book  delay p50  delay p99   429s  virtual h  wall s"

    static func duration(_ seconds: Double?) -> String {
        guard let seconds else { return "-" }
        return seconds < 120 ? String(format: "%.0fs", seconds) : String(format: "%.1fm", seconds / 60)
    }

    static func row(_ r: StrategyResult) -> String {
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        func left(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        return [
            left(String(format: "%.0f%%", r.webhookLoss * 100), 4), pad(r.strategy.rawValue, 12),
            left("\(r.completed)/\(r.books)", 11), left("\(r.retrievals)", 12), left("\(r.duplicates)", 3),
            left(String(format: "%.2f", r.statusCallsPerBook), 11), left(duration(r.delayP50), 9), left(duration(r.delayP99), 9),
            left("\(r.answers429)", 5), left(String(format: "%.1f", r.virtualHours), 9), left(String(format: "%.1f", r.wallSeconds), 6),
        ].joined(separator: "  ")
    }
}

/// `bookwatch bench scale`: serve and status on databases of 1k, 10k and 100k Books.
struct BenchScaleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Measure serve (start to ready, RSS, idle CPU), the due-poll query and status --limit 50 at growing database sizes."
    )

    @Option(help: "Database sizes in Books, comma-separated.") var books = "1000,10000,100000"
    @Option(name: .customLong("idle-seconds"), help: "How long idle CPU is measured.") var idleSeconds = 10.0
    @Option(help: ArgumentHelp("Directory for the databases (default: a temporary one, removed afterwards).", valueName: "path"))
    var directory: String?
    @Option(
        help: ArgumentHelp(
            "A PostgreSQL server instead of SQLite files: each size in a schema of its own, dropped afterwards (the URL must not name a schema).",
            valueName: "url"
        )
    )
    var postgres: String?

    func sizes() throws -> [Int] {
        try commaList(books, { Int($0).flatMap { $0 > 0 ? $0 : nil } }, invalid: { "--books '\($0)' is not a positive number" })
    }

    func validate() throws {
        _ = try sizes()
        guard idleSeconds > 0 else { throw ValidationError("--idle-seconds must be positive") }
        if let postgres {
            guard directory == nil else { throw ValidationError("--directory is for SQLite files; --postgres puts each size in a schema") }
            try validateSchemalessPostgresURL(postgres, option: "--postgres", why: "each size gets a schema of its own, dropped afterwards")
        }
    }

    func run() async throws {
        let context = CLIContext.current
        let base =
            directory.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-scale-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { if directory == nil { try? FileManager.default.removeItem(at: base) } }
        let database: ScaleDatabase = postgres.map { .postgres(url: $0) } ?? .sqlite(directory: base)
        let location = postgres.map { "PostgreSQL \(DatabaseLocation($0).redacted), a schema per size" } ?? "SQLite files in \(base.path)"
        context.print("bench scale: \(location); serve against an unreachable API (nothing due while idle)")
        context.print(
            "books    docs      fill s  db MB  ready s  RSS MB  idle CPU  status ms  due-poll µs (idle/backlog/baseline)  1h virtual: polls, RSS MB before→after, wall s  idle tx/s"
        )
        var scrapes: [String] = []
        for size in try sizes() {
            let f = try await ScaleBench.run(books: size, database: database, idleSeconds: idleSeconds) { context.print($0) }
            context.print(
                String(
                    format: "%-7d  %-8d  %6.1f  %5.0f  %7.2f  %6.1f  %7.2f%%  %9.1f  %8.0f / %8.0f / %5.0f               %6d, %.0f→%.0f, %.1f  %@",
                    f.books,
                    f.documents,
                    f.fillSeconds,
                    f.databaseMB,
                    f.readySeconds,
                    f.rssReadyMB,
                    f.idleCPUPercent,
                    f.statusMilliseconds,
                    f.duePollIdleMicros,
                    f.duePollBacklogMicros,
                    f.baselineMicros,
                    f.virtualHourPolls,
                    f.rssBeforeHourMB,
                    f.rssAfterHourMB,
                    f.virtualHourWallSeconds,
                    f.idleTransactionsPerSecond.map { String(format: "%.1f", $0) } ?? "-"
                )
            )
            scrapes.append(
                String(
                    format: "%-7d  scrape reads %.0f µs now; before, also the documents scan: %.0f µs (%.1fx)",
                    f.books,
                    f.scrapeGaugesMicros,
                    f.scrapeGaugesMicros + f.documentCountsMicros,
                    (f.scrapeGaugesMicros + f.documentCountsMicros) / max(f.scrapeGaugesMicros, 1)
                )
            )
        }
        for line in scrapes { context.print(line) }
    }
}

/// Each item of a comma-separated option, parsed (surrounding spaces ignored); the first one
/// `parse` refuses stops with `invalid(item)` as the usage error.
func commaList<T>(_ text: String, _ parse: (String) -> T?, invalid: (String) -> String) throws -> [T] {
    try text.split(separator: ",").map { item in
        guard let value = parse(item.trimmingCharacters(in: .whitespaces)) else { throw ValidationError(invalid(String(item))) }
        return value
    }
}
