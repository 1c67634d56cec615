import ArgumentParser
import BookWatchCore
import BookWatchStore
import Foundation

/// `bookwatch status [UUID] [--json]`: what every watched Book is doing.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show watched Books: state, documents, generation, polls, analytics.")

    @OptionGroup var database: DatabaseOptions
    @Argument(help: ArgumentHelp("Show only this Book.", valueName: "uuid")) var uuid: String?
    @Flag(name: .long, help: "Print JSON (the documented shape) instead of a table.") var json = false
    @Option(name: .long, help: "Show only Books in this state (\(BookPhase.allCases.map(\.rawValue).joined(separator: ", "))).")
    var state: String?
    @Option(name: .long, help: "Show at most this many Books.") var limit: Int?

    func validate() throws {
        if let uuid { _ = try parseUUIDs([uuid]) }
        if let state, BookPhase(rawValue: state) == nil {
            throw ValidationError("--state '\(state)' is not one of \(BookPhase.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more, not \(limit)") }
    }

    func run() async throws {
        let context = CLIContext.current
        let filter = state.flatMap(BookPhase.init(rawValue:))
        var records: [BookRecord] = []
        var totals: [BookPhase: Int] = [:]
        if let store = try database.openExistingStore(context) {
            defer { try? store.close() }
            if let uuid, let book = BookUUID(uuid) {
                guard let record = try await store.book(book) else {
                    throw CLIError.runtime("book \(book) is not tracked")
                }
                records = [record]
                totals = [record.machine.phase: 1]
            } else {
                records = try await store.books(state: filter, limit: limit)
                totals = try await store.totals()
            }
        }
        if json {
            let document = BookStatusDocument(records: records, totals: totals)
            context.print(String(decoding: try document.jsonData(), as: UTF8.self))
        } else {
            context.standardOutput.write(StatusTable(records: records, totals: totals, now: context.now()).render())
        }
    }
}
