import ArgumentParser
import BookWatchBench
import BookWatchClocks
import BookWatchCore
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import OcrolusSimulator

/// `bookwatch demo`: the simulator and the watcher in one process, faults on, live progress and
/// a summary at the end. The command a newcomer runs first.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Watch simulated Books with faults on (30% webhooks lost, duplicates, 5xx, 429s) and show the outcome."
    )

    @Option(help: "Number of simulated Books.") var books = 50
    @Option(help: "Seed of the scenario.") var seed: UInt64 = 1
    @Option(help: "Wall-clock seconds the run should take (the scenario is sped up to fit).") var seconds: Double = 60
    @Option(help: "SQLite database (default: a temporary file, removed afterwards).") var database: String?

    func validate() throws {
        if books < 1 { throw ValidationError("--books must be at least 1, not \(books)") }
        if seconds <= 0 { throw ValidationError("--seconds must be positive, not \(seconds)") }
    }

    func run() async throws {
        let context = CLIContext.current
        var config = SimulationConfig()
        config.books = books
        config.seed = seed
        config.flavour = .mixed
        config.faults = .demo
        config.start = context.now()
        let span =
            Scenario(config: config).books.map { book in
                (book.generations.map(\.analyticsReadyAt) + book.documents.map(\.finishAt)).max() ?? 0
            }.max() ?? 600
        let speed = max(1, (span + 600) / seconds)
        let clock = ScaledClock(origin: config.start, factor: speed)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { if database == nil { try? FileManager.default.removeItem(at: directory) } }
        var logger = Logger(label: "bookwatch.demo")
        logger.logLevel = .critical
        var watcherConfig = WatcherConfiguration()
        watcherConfig.analyticsRetry = RetryPolicy(base: 15, cap: 120, maxAttempts: 60)
        let deployment: SimulatedDeployment
        do {
            deployment = try SimulatedDeployment(
                simulation: config,
                clock: clock,
                databasePath: database ?? directory.appendingPathComponent("demo.sqlite").path,
                watcher: watcherConfig,
                pollSchedule: PollSchedule(minimum: 60, maximum: 900),
                logger: logger
            )
        } catch let error as StoreError {
            throw CLIError.opening(error, setting: "--database")
        }
        context.print(
            "bookwatch demo: \(books) simulated Books, seed \(seed), faults on (30% of webhooks lost, 20% duplicated, 20% reordered, 10% 5xx, 5% 429)"
        )
        context.print("scenario of \(Int(span / 60)) virtual minutes at x\(Int(speed)) speed; API budget 5 requests/s (virtual)")
        // The lender tracks every Book it creates, as `bookwatch track` would: a Book whose webhooks
        // are all lost would otherwise never be known.
        for book in deployment.simulation.scenario.books {
            _ = try await deployment.store.apply(.command(.track(.operator)), to: book.uuid, at: clock.now(), options: .init())
        }
        let deadline = clock.now().addingTimeInterval(span + 4 * 3600)
        var lastPrint = Date.distantPast
        while clock.now() < deadline {
            try await deployment.step()
            if try await deployment.settled() { break }
            if Date().timeIntervalSince(lastPrint) >= 1 {
                lastPrint = Date()
                let line = try await progressLine(deployment)
                context.standardOutput.write(context.outputIsTerminal ? "\r" + line : line + "\n")
            }
            let next = try await deployment.nextDue() ?? clock.now().addingTimeInterval(5)
            try await clock.sleep(until: min(max(next, clock.now()), clock.now().addingTimeInterval(speed / 4)))
        }
        context.print((context.outputIsTerminal ? "\r" : "") + (try await progressLine(deployment)))
        context.standardOutput.write(try await summary(deployment))
    }

    func progressLine(_ d: SimulatedDeployment) async throws -> String {
        let totals = try await d.store.totals()
        let sim = await d.simulation.stats()
        let done = (totals[.complete] ?? 0) + (totals[.failed] ?? 0) + (totals[.deleted] ?? 0)
        return "books settled \(done)/\(books) | webhooks delivered \(sim.deliveryAnswers["200"] ?? 0), lost \(sim.webhooksDroppedByFault)"
            + " | status calls \(sim.statusCalls) | analytics \(sim.analyticsOK) | 429s \(sim.answers429) 5xx \(sim.answers5xx)   "
    }

    func summary(_ d: SimulatedDeployment) async throws -> String {
        let sim = await d.simulation.stats()
        let totals = try await d.store.totals()
        let counts = try await d.store.analyticsCounts()
        let finished = sim.truth.reduce(0) { $0 + $1.finishedGenerations }
        let elapsed = d.clock.now().timeIntervalSince(d.simulation.config.start)
        // A naive poller: every Book every 30 s for the whole run (capped by the 5/s budget).
        let naive = min(Double(books) * elapsed / 30, 5 * elapsed)
        let rows: [(String, String)] = [
            ("Books", "\(books): " + BookPhase.allCases.compactMap { p in totals[p].map { "\($0) \(p.rawValue)" } }.joined(separator: ", ")),
            ("finished Book generations (simulator)", "\(finished)"),
            ("analytics retrievals (200s)", "\(sim.analyticsOK), duplicates: \(sim.duplicateRetrievals.count)"),
            ("analytics results stored", "\(counts.results)"),
            ("status calls", "\(sim.statusCalls) (\(String(format: "%.2f", Double(sim.statusCalls) / Double(books))) per Book)"),
            ("a naive 30 s poller would have made", "\(Int(naive)) status calls"),
            ("webhooks generated / lost / duplicated", "\(sim.webhooksGenerated) / \(sim.webhooksDroppedByFault) / \(sim.webhooksDuplicated)"),
            ("API faults answered", "\(sim.answers5xx) 5xx, \(sim.answers429) 429, \(sim.analyticsNotReady) not-ready (425)"),
            ("virtual time", "\(Int(elapsed / 60)) minutes"),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        return "\n" + rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n") + "\n"
    }
}
