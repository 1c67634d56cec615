import ArgumentParser
import BookWatchCore
import BookWatchStore
import Foundation

/// `bookwatch status [UUID] [--json] [--watch]`: what every watched Book is doing. Reads the
/// database directly (WAL readers do not block `serve`'s writer, nor it them).
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show watched Books: state, documents, generation, polls, analytics."
    )

    @OptionGroup var database: DatabaseOptions
    @Argument(help: ArgumentHelp("Show only this Book.", valueName: "uuid")) var uuid: String?
    @Flag(name: .long, help: "Print JSON (the documented shape) instead of a table.") var json = false
    @Option(name: .long, help: "Show only Books in this state (\(BookPhase.allCases.map(\.rawValue).joined(separator: ", "))).")
    var state: String?
    @Option(name: .long, help: "Show at most this many Books.") var limit: Int?
    @Option(name: .long, help: ArgumentHelp("Show only Books with this label (track --label, track --from).", valueName: "text"))
    var label: String?
    @Flag(name: .long, help: "Redraw every second (in place on a terminal, as plain frames otherwise) until Ctrl-C.")
    var watch = false
    @Option(name: .long, help: ArgumentHelp("Seconds between --watch frames (default 1).", valueName: "seconds"))
    var interval: Double = 1

    func validate() throws {
        if let uuid { _ = try parseUUIDs([uuid]) }
        if let state, BookPhase(rawValue: state) == nil {
            throw ValidationError("--state '\(state)' is not one of \(BookPhase.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more, not \(limit)") }
        if !(interval >= 0.1 && interval <= 3600) { throw ValidationError("--interval must be between 0.1 and 3600 seconds, not \(interval)") }
        if watch && json { throw ValidationError("--watch and --json cannot be combined (use a loop around status --json)") }
    }

    func run() async throws {
        let context = CLIContext.current
        // Opened once (a watch keeps it between frames; readers never block serve); nil until
        // the database exists, since a reader must not create one.
        var store = try await database.openExistingStore(context)
        guard watch else {
            let text: String
            if let opened = store {
                text = try await using(opened) { try await frame(context, store: $0) }
            } else {
                text = try await frame(context, store: nil)
            }
            context.standardOutput.write(text)
            return
        }
        // Ctrl-C ends the process (SIGINT's default).
        var first = true
        while true {
            if store == nil { store = try await database.openExistingStore(context) }
            let buffer = try await frame(context, store: store)
            let stamp = "updated \(Self.clockTime(context.now())), every \(Self.seconds(interval)); Ctrl-C to stop"
            if context.outputIsTerminal {
                // Home, draw, clear what the previous frame left below.
                context.standardOutput.write(
                    "\u{1B}[H" + (first ? "\u{1B}[2J" : "") + buffer.replacingOccurrences(of: "\n", with: "\u{1B}[K\n")
                        + stamp + "\u{1B}[K\n\u{1B}[J"
                )
            } else {
                context.standardOutput.write((first ? "" : "\n") + "-- " + stamp + "\n" + buffer)
            }
            first = false
            try await context.sleep(interval)
        }
    }

    static func clockTime(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt).time(includingFractionalSeconds: false)) + "Z"
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))s" : "\(value)s"
    }

    /// One rendering: the table (or JSON) as text.
    private func frame(_ context: CLIContext, store: (any BookStore)?) async throws -> String {
        let filter = state.flatMap(BookPhase.init(rawValue:))
        var records: [BookRecord] = []
        var totals: [BookPhase: Int] = [:]
        if let store {
            if let uuid, let book = BookUUID(uuid) {
                // One Book, as text: described in full (`kubectl describe`); `--json` keeps the
                // documented one-record document.
                if !json {
                    guard let description = try await BookDescription.read(book, from: store, now: context.now()) else {
                        throw CLIError.runtime("book \(book) is not tracked")
                    }
                    return description.render()
                }
                guard let record = try await store.book(book) else {
                    throw CLIError.runtime("book \(book) is not tracked")
                }
                records = [record]
                totals = [record.machine.phase: 1]
            } else {
                records = try await store.books(state: filter, label: label, limit: limit)
                totals = try await store.totals()
            }
        }
        if json {
            let document = BookStatusDocument(records: records, totals: totals)
            return String(decoding: try document.jsonData(), as: UTF8.self) + "\n"
        } else {
            let table = StatusTable(
                records: records,
                totals: totals,
                now: context.now(),
                colour: context.useColour,
                unicode: context.outputIsTerminal
            )
            return table.render()
        }
    }
}
