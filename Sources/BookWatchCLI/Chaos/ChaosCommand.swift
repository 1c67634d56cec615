import ArgumentParser
import BookWatchCore
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
        if let database, !database.hasPrefix("postgres://") && !database.hasPrefix("postgresql://") {
            throw ValidationError("--database must be a postgres:// URL (SQLite is the default)")
        }
        if database != nil, directory != nil { throw ValidationError("--directory and --database exclude each other") }
        if let database, ChaosDatabase.namesSchema(database) {
            throw ValidationError("--database must not name a schema: each seed makes its own (chaos_SEED_...) and drops it after")
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

/// Runs seeds one after the other and sums up what they covered.
enum ChaosSearch {
    struct Report {
        var searched = 0
        var failed = 0
        var steps = 0
        var drainSteps = 0
        var virtualSeconds = 0
        var seconds = 0.0
        var counts: [String: Int] = [:]
        var transitions: [String: Int] = [:]
        var failures: [UInt64] = []
        /// The first seed that reached each scenario marker.
        var firstSeeds: [String: UInt64] = [:]

        func lines(transitions showAll: Bool) -> [String] {
            var lines = [
                String(
                    format: "searched %d seeds in %.1f s (%.2f seeds/s, %.0f steps/s): %d failed%@",
                    searched,
                    seconds,
                    Double(searched) / max(seconds, 0.001),
                    Double(steps + drainSteps) / max(seconds, 0.001),
                    failed,
                    failures.isEmpty ? "" : " (seeds \(failures.map(String.init).joined(separator: ", ")))"
                )
            ]
            lines.append("steps: \(steps) searched + \(drainSteps) draining; \(virtualSeconds / 3600) virtual hours")
            lines.append("events and faults:")
            for (key, count) in counts.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(key): \(count)\(firstSeeds[key].map { " (first: seed \($0))" } ?? "")")
            }
            let taken = Set(transitions.keys.map(Self.fromAndInput))
            let possible = ChaosLog.phases.flatMap { from in ChaosLog.inputs.map { "\(from) --\($0)" } }
            let missing = possible.filter { !taken.contains($0) }
            lines.append(
                "machine transitions taken: \(transitions.count) distinct (from, input, to); "
                    + "\(taken.count) of \(possible.count) (from, input) pairs, \(missing.count) never taken"
            )
            if showAll {
                for (key, count) in transitions.sorted(by: { $0.key < $1.key }) { lines.append("  \(key): \(count)") }
                lines.append("(from, input) never taken:")
                for pair in missing { lines.append("  \(pair)") }
            }
            return lines
        }

        /// "from --input--> to" without its "to".
        static func fromAndInput(_ transition: String) -> String {
            transition.components(separatedBy: "--> ").first ?? transition
        }
    }

    static func defaultDirectory() -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDirectory), isDirectory.boolValue,
            FileManager.default.isWritableFile(atPath: "/dev/shm")
        {
            return "/dev/shm"
        }
        return FileManager.default.temporaryDirectory.path
    }

    static func run(
        seeds: [UInt64],
        steps: Int,
        replicas: Int,
        traceLines: Int = 60,
        database: ChaosDatabase? = nil,
        timeLimit: TimeInterval? = nil,
        stopOnFailure: Bool = false,
        jobs: Int = 1,
        each: (ChaosOutcome) -> Void = { _ in }
    ) async throws -> Report {
        var report = Report()
        let started = ContinuousClock.now
        let database = database ?? .sqlite(directory: defaultDirectory())
        // `jobs` seeds side by side (each run is deterministic on its own); outcomes are taken in
        // seed order, so the report does not depend on which finished first.
        var chunks: [[UInt64]] = []
        let width = max(jobs, 1)
        for start in stride(from: 0, to: seeds.count, by: width) { chunks.append(Array(seeds[start..<min(start + width, seeds.count)])) }
        search: for chunk in chunks {
            if let timeLimit, (ContinuousClock.now - started).inSeconds > timeLimit { break }
            let outcomes = try await withThrowingTaskGroup(of: ChaosOutcome.self) { group in
                for seed in chunk {
                    group.addTask {
                        let run = try await ChaosRun.open(world: ChaosWorld(seed: seed, replicas: replicas), database: database)
                        return try await run.run(steps: steps, traceLines: traceLines)
                    }
                }
                return try await group.reduce(into: [UInt64: ChaosOutcome]()) { $0[$1.seed] = $1 }
            }
            for seed in chunk {
                guard let outcome = outcomes[seed] else { continue }
                each(outcome)
                report.searched += 1
                report.steps += outcome.steps
                report.drainSteps += outcome.drainSteps
                report.virtualSeconds += outcome.virtualSeconds
                report.counts.merge(outcome.counts, uniquingKeysWith: +)
                for key in outcome.counts.keys where key.hasPrefix("scenario") && report.firstSeeds[key] == nil { report.firstSeeds[key] = seed }
                report.transitions.merge(outcome.transitions, uniquingKeysWith: +)
                if outcome.violation != nil {
                    report.failed += 1
                    report.failures.append(seed)
                    if stopOnFailure { break search }
                }
            }
        }
        report.seconds = (ContinuousClock.now - started).inSeconds
        return report
    }
}
