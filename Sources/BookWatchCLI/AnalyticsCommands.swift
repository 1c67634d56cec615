import ArgumentParser
import BookWatchCore
import BookWatchStore
import Foundation
import OcrolusAPI

/// `bookwatch analytics UUID [--endpoint NAME]`: prints the stored analytics JSON.
struct AnalyticsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analytics",
        abstract: "Print the stored analytics of a Book (newest generation first)."
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
        var entries: [String] = []
        for result in results {
            let body = String(decoding: result.body, as: UTF8.self)
            let isJSON = (try? JSONSerialization.jsonObject(with: Data(result.body), options: [.fragmentsAllowed])) != nil
            let encodedBody = isJSON ? body : String(decoding: try JSONEncoder().encode(body), as: UTF8.self)
            entries.append(
                #"{"generation":\#(result.generation),"endpoint":"\#(result.endpoint)","retrieved_at":"\#(BookStatusEntry.rfc3339(result.retrievedAt))","body":\#(encodedBody)}"#
            )
        }
        context.print(#"{"book_uuid":"\#(book)","results":[\#(entries.joined(separator: ","))]}"#)
    }
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
