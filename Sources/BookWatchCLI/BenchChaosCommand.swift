import ArgumentParser
import BookWatchBench
import BookWatchCore
import BookWatchStore
import Foundation

/// `bookwatch bench chaos`: the deterministic simulation search (docs/testing.md).
struct BenchChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Search interleavings by seed: simulator, replicas, operator and faults under one seeded scheduler, invariants after every step."
    )

    @Option(help: "How many seeds to search (from --seed on).") var seeds = 1
    @Option(help: "The first seed.") var seed: UInt64 = 1
    @Option(help: "Scheduler steps per seed before the drain (liveness) phase.") var steps = 1_000
    @Option(help: "Watcher replicas sharing the store.") var replicas = 2
    @Option(help: "Start no new seeds after this many minutes of real time (0: no limit).") var minutes = 0.0
    @Flag(help: "Print every transition of the machine taken, with counts.") var coverage = false
    @Option(name: .customLong("trace-lines"), help: "Lines of a failing Book's trace to print.") var traceLines = 60
    @Option(help: "Seeds run side by side (each stays deterministic; 2 on 2 cores).") var jobs = 1
    @Flag(name: .customLong("stop-on-failure"), help: "Stop at the first seed that breaks an invariant.") var stopOnFailure = false
    @Option(help: "Where the per-seed databases go (default: /dev/shm when present, else the temporary directory).")
    var directory: String?
    @Option(help: "Run on PostgreSQL instead: postgres://user:password@host:port/database (each seed in a fresh schema, dropped after).")
    var database: String?

    func validate() throws {
        guard seeds >= 1 else { throw ValidationError("--seeds must be at least 1") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard (1...8).contains(replicas) else { throw ValidationError("--replicas must be 1 to 8") }
        guard minutes >= 0 else { throw ValidationError("--minutes must not be negative") }
        guard (1...16).contains(jobs) else { throw ValidationError("--jobs must be 1 to 16") }
        if database != nil, directory != nil { throw ValidationError("--directory and --database exclude each other") }
        if let database {
            try validateSchemalessPostgresURL(database, option: "--database", why: "each seed makes its own (chaos_SEED_...) and drops it after")
        }
    }

    func run() async throws {
        let context = CLIContext.current
        let store: ChaosDatabase = database.map { .postgres(url: $0) } ?? .sqlite(directory: directory ?? ChaosSearch.defaultDirectory())
        let report = try await ChaosSearch.run(
            seeds: Array(seed..<(seed + UInt64(seeds))),
            steps: steps,
            replicas: replicas,
            traceLines: traceLines,
            database: store,
            timeLimit: minutes > 0 ? minutes * 60 : nil,
            stopOnFailure: stopOnFailure,
            jobs: jobs
        ) { outcome in
            if let violation = outcome.violation {
                context.print("seed \(outcome.seed): FAILED \(violation)")
                context.print("  replay: \(outcome.replay)\(database == nil ? "" : " --database URL")")
                context.print("  world: \(outcome.world)")
                for line in violation.trace { context.print(line) }
            }
        }
        for line in report.lines(transitions: coverage) { context.print(line) }
        if report.failed > 0 { throw ExitCode(1) }
    }
}
