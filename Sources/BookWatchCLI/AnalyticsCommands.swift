import ArgumentParser
import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation
import OcrolusAPI

/// `bookwatch analytics UUID` (show) and `bookwatch analytics export --dir DIR`.
struct AnalyticsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analytics",
        abstract: "Print the stored analytics of a Book, or export every stored result as files.",
        subcommands: [AnalyticsShow.self, AnalyticsExport.self],
        defaultSubcommand: AnalyticsShow.self
    )
}

/// `bookwatch analytics [show] UUID [--endpoint NAME]`: prints the stored analytics JSON.
struct AnalyticsShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print the stored analytics of a Book (newest generation first); the default: bookwatch analytics UUID."
    )

    @OptionGroup var database: DatabaseOptions
    @Argument(help: ArgumentHelp("Book uuid.", valueName: "uuid")) var uuid: String
    @Option(help: "Only this endpoint (\(AnalyticsEndpoint.allCases.map(\.rawValue).joined(separator: ", "))).") var endpoint: String?
    @Flag(help: "Every stored generation, not only the newest.") var all = false

    func validate() throws {
        _ = try parseUUIDs([uuid])
        if let endpoint, AnalyticsEndpoint(rawValue: endpoint) == nil {
            throw ValidationError("--endpoint '\(endpoint)' is not one of \(AnalyticsEndpoint.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        let context = CLIContext.current
        let book = try parseUUIDs([uuid])[0]
        guard let store = try await database.openExistingStore(context) else { throw CLIError.runtime("no analytics stored for \(book)") }
        var results = try await using(store) { try await $0.analyticsResults(for: book, endpoint: endpoint) }
        if !all, let newest = results.first?.generation { results = results.filter { $0.generation == newest } }
        guard !results.isEmpty else { throw CLIError.runtime("no analytics stored for \(book)\(endpoint.map { " (\($0))" } ?? "")") }
        // One JSON document: {"book_uuid", "results": [{"generation", "endpoint", "retrieved_at", "body"}]}.
        context.print(#"{"book_uuid":"\#(book)","results":[\#(results.map(ResultExporter.document).joined(separator: ","))]}"#)
    }
}

/// `bookwatch analytics export --dir DIR [--since TIME]`: one file per stored result.
struct AnalyticsExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write every stored result as a JSON file (UUID.gGENERATION.ENDPOINT.json) into a directory.",
        discussion: """
            Each file appears whole (written aside, then linked to its name) and an existing one is never rewritten: \
            run it again (or beside serve --export-dir) and only what is missing is added. Prints written and already present counts.
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: ArgumentHelp("The directory (it must exist).", valueName: "dir")) var dir: String
    @Option(
        help: ArgumentHelp("Only results retrieved at or after TIME: RFC 3339 (2026-12-01T00:00:00Z) or an age (90m, 24h, 7d).", valueName: "time")
    )
    var since: String?

    func validate() throws {
        if let since, Self.parseSince(since, now: Date()) == nil {
            throw ValidationError("--since '\(since)' is neither an RFC 3339 time nor an age like 90m, 24h or 7d")
        }
    }

    /// An RFC 3339 time, or `now` minus an age (`s`, `m`, `h`, `d`).
    static func parseSince(_ text: String, now: Date) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle()) { return date }
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        // At most a century: further back is before any Ocrolus Book, and it keeps the time in range.
        guard let unit = text.last.flatMap({ units[$0] }), let amount = Double(text.dropLast()), amount >= 0, amount * unit <= 100 * 365 * 86400
        else { return nil }
        return now.addingTimeInterval(-amount * unit)
    }

    func run() async throws {
        let context = CLIContext.current
        let exporter: ResultExporter
        do {
            exporter = try ResultExporter(directory: dir)
        } catch {
            throw CLIError.usage("--dir \(error)")
        }
        exporter.sweepAbandoned()  // file times are the system's: the real clock
        let cutoff = since.flatMap { Self.parseSince($0, now: context.now()) }
        guard let store = try await database.openExistingStore(context) else {
            context.print("exported 0 results (0 already present): no database at \(database.resolvedPath(context).setting)")
            return
        }
        let (written, present) = try await using(store) { store in
            var written = 0
            var present = 0
            var after: AnalyticsResult?
            while true {
                let page = try await store.analyticsResults(retrievedSince: cutoff, after: after, limit: Self.pageSize)
                for result in page {
                    do {
                        if try exporter.export(result) { written += 1 } else { present += 1 }
                    } catch {
                        throw CLIError.runtime("export stopped after \(written) files: \(error)")
                    }
                }
                guard page.count == Self.pageSize, let last = page.last else { return (written, present) }
                after = last
            }
        }
        context.print("exported \(written) results (\(present) already present) to \(dir)")
    }

    /// Results read per statement.
    static let pageSize = 200
}

/// `bookwatch retry UUID`: re-arms the failed analytics job of a Book.
struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Re-arm the failed analytics job of a Book; serve retries it at once."
    )

    @OptionGroup var database: DatabaseOptions
    @Argument(help: ArgumentHelp("Book uuid.", valueName: "uuid")) var uuid: String

    func validate() throws { _ = try parseUUIDs([uuid]) }

    func run() async throws {
        let context = CLIContext.current
        let book = try parseUUIDs([uuid])[0]
        guard let store = try await database.openExistingStore(context) else { throw CLIError.runtime("book \(book) is not tracked") }
        let applied = try await using(store) { try await $0.apply(.command(.retry), to: book, at: context.now(), options: .init()) }
        guard let outcome = applied else {
            throw CLIError.runtime("book \(book) is not tracked")
        }
        if outcome.actions.contains(.pollNow(.operator))
            && !outcome.actions.contains(where: { if case .rearmAnalyticsJob = $0 { true } else { false } })
        {
            // Failed by a refused status poll: there was no job, the Book is looked at again.
            context.print("watching \(book) again (its status poll was refused); serve polls it at once")
            return
        }
        guard outcome.actions.contains(where: { if case .rearmAnalyticsJob = $0 { true } else { false } }) else {
            throw CLIError.runtime("nothing to retry: book \(book) is \(outcome.machine.phase.rawValue)")
        }
        context.print("re-armed analytics of \(book), generation \(outcome.machine.generation)")
    }
}
