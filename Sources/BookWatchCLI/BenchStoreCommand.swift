import ArgumentParser
import BookWatchBench
import BookWatchCore
import BookWatchStore
import Foundation

/// `bookwatch bench store`: the store operations one Book's life costs, on SQLite and (with
/// `--postgres`) on PostgreSQL in the same run, with the ratio; and the same work done by several
/// workers at once, as replicas sharing the database would.
struct BenchStoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Time the store's operations (track, webhook, claim + snapshot, analytics) on SQLite and PostgreSQL."
    )

    @Option(help: "Books to take through their life.") var books = 500
    @Option(help: "Workers doing it at once (replicas sharing one database).") var workers = "1,3"
    @Option(help: ArgumentHelp("A postgres:// URL to measure too (a schema of its own is created and left).", valueName: "url"))
    var postgres: String?

    func workerCounts() throws -> [Int] {
        try commaList(workers, { Int($0).flatMap { (1...64).contains($0) ? $0 : nil } }, invalid: { "--workers '\($0)' is not 1 to 64" })
    }

    func validate() throws {
        guard books > 0 else { throw ValidationError("--books must be at least 1") }
        _ = try workerCounts()
        if let postgres { try validateSchemalessPostgresURL(postgres, option: "--postgres", why: "the benchmark makes its own") }
    }

    func run() async throws {
        let context = CLIContext.current
        var baseline: [Int: StoreBench.Figures] = [:]
        context.print("store     workers  books    ops     wall   ops/s  ms/Book/worker  vs SQLite")
        for (name, make) in try targets() {
            for count in try workerCounts() {
                let store = try await make()
                let figures = try await using(store) { try await StoreBench.run(store: $0, books: books, workers: count) }
                if name == "sqlite" { baseline[count] = figures }
                let ratio = baseline[count].map { String(format: "%.2fx", figures.seconds / $0.seconds) } ?? "-"
                let columns = String(
                    format: "%7d  %5d  %5d  %6.2fs  %6.0f  %14.2f  %@",
                    count,
                    books,
                    figures.operations,
                    figures.seconds,
                    Double(figures.operations) / figures.seconds,
                    figures.seconds * 1000 / Double(books) * Double(count),
                    ratio
                )
                context.print(name.padding(toLength: 8, withPad: " ", startingAt: 0) + "  " + columns)
            }
        }
    }

    private func targets() throws -> [(String, () async throws -> any BookStore)] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-bench-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var targets: [(String, () async throws -> any BookStore)] = [
            (
                "sqlite",
                {
                    try await StoreOpener.open(directory.appendingPathComponent("\(UUID().uuidString).sqlite").path, setting: "bench store")
                }
            )
        ]
        if let postgres {
            targets.append(
                (
                    "postgres",
                    {
                        let schema = "bench_\(UUID().uuidString.prefix(8).lowercased())"
                        guard let named = DatabaseLocation.url(postgres, schema: schema) else {
                            throw CLIError.usage("--postgres must not name a schema: the benchmark makes its own")
                        }
                        return try await StoreOpener.open(named, setting: "--postgres")
                    }
                )
            )
        }
        return targets
    }
}
