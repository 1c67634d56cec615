import ArgumentParser
import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation

/// `bookwatch bench`: benchmarks that print figures (docs/benchmarks.md). None of them fails on
/// timing; each compares against a baseline measured in the same run where one exists.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print figures (docs/benchmarks.md).",
        subcommands: [BenchFillCommand.self])
}

/// `bookwatch bench fill`: a database of many Books in realistic states, for the scale figures
/// (and for trying `status` at scale).
struct BenchFillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fill",
        abstract: "Fill a database with tracked Books and Documents in a steady-state mix (70% complete, 20% processing, ...).")

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
        let store = try database.openStore(context)
        defer { try? store.close() }
        let summary = try await store.fillForBenchmark(books: books, documentsPerBook: documentsPerBook, now: context.now(), seed: seed)
        let states = BookPhase.allCases.compactMap { phase in summary.byState[phase].map { "\($0) \(phase.rawValue)" } }
        context.print(String(format: "filled %d Books, %d Documents in %.1f s (%@)", summary.books, summary.documents, summary.seconds,
                             states.joined(separator: ", ")))
    }
}
