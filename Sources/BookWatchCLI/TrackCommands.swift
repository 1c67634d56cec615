import ArgumentParser
import BookWatchCore
import BookWatchStore
import Foundation

/// One or more Book uuids, validated before anything is opened or written.
struct BookUUIDArguments: ParsableArguments {
    @Argument(help: ArgumentHelp("Book uuids.", valueName: "uuid")) var uuids: [String] = []

    func validate() throws {
        if uuids.isEmpty { throw ValidationError("at least one Book uuid is required") }
        _ = try parseUUIDs(uuids)
    }

    /// The parsed uuids (validation has already rejected malformed ones).
    func parsed() throws -> [BookUUID] { try parseUUIDs(uuids) }
}

/// `bookwatch track UUID...`: start watching Books (they are polled at once by `serve`, or, with
/// `--new`, when webhooks or the schedule say so).
struct TrackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "track",
        abstract: "Start watching Books; serve polls them at once (with --new: when webhooks or the schedule say so)."
    )

    @OptionGroup var database: DatabaseOptions
    @Argument(help: ArgumentHelp("Book uuids.", valueName: "uuid")) var uuids: [String] = []
    @Flag(name: .customLong("new"), help: "The Books were just created: nothing to see yet, so spend no status call now.")
    var justCreated = false
    @Option(help: ArgumentHelp("A label for the Books (your loan id, say): status shows it and filters on it (--label).", valueName: "text"))
    var label: String?
    @Option(
        name: .customLong("from"),
        help: ArgumentHelp(
            "Track the Books of a file (- for standard input): one uuid[,label] per line; # comments and blank lines skipped.",
            valueName: "file"
        )
    )
    var fromFile: String?

    func validate() throws {
        if uuids.isEmpty && fromFile == nil { throw ValidationError("at least one Book uuid (or --from FILE) is required") }
        _ = try parseUUIDs(uuids)
        if let label, label.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--label is empty") }
        if let label, !Self.isPrintable(label) { throw ValidationError("--label holds a control character") }
    }

    /// One line of a `--from` file: the Book and its label, or why the line is refused.
    static func parseLine(_ line: Substring) -> Result<(BookUUID, String?), TrackLineError>? {
        let text = line.trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: "\u{FEFF}")))
        if text.isEmpty || text.hasPrefix("#") { return nil }
        let parts = text.split(separator: ",", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let uuid = BookUUID(parts[0]) else { return .failure(TrackLineError(text: text)) }
        let label = parts.count > 1 && !parts[1].isEmpty ? parts[1] : nil
        if let label, !isPrintable(label) { return .failure(TrackLineError(text: text)) }
        return .success((uuid, label))
    }

    /// A label without control characters (a newline or an escape would break the table).
    static func isPrintable(_ label: String) -> Bool {
        !label.unicodeScalars.contains { CharacterSet.controlCharacters.contains($0) }
    }

    /// Books tracked per transaction by `--from`.
    static let batchSize = 100

    /// A `--from` line that names no Book.
    struct TrackLineError: Error { let text: String }

    func run() async throws {
        let context = CLIContext.current
        let label = label?.trimmingCharacters(in: .whitespaces)
        var entries = try parseUUIDs(uuids).map { ($0, label) }
        var invalid: [(line: Int, text: String)] = []
        if let fromFile {
            let data: Data?
            if fromFile == "-" {
                data = (try? FileHandle.standardInput.readToEnd()) ?? Data()  // nil: empty input
            } else {
                data = FileManager.default.contents(atPath: fromFile)
            }
            guard let data else { throw CLIError.usage("--from \(fromFile): cannot be read") }
            // Any line ending (a CRLF file is split too: "\r\n" is one Character, a newline).
            for (index, line) in String(decoding: data, as: UTF8.self).split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
                .enumerated()
            {
                switch Self.parseLine(line) {
                case nil: continue
                case .success(let (uuid, lineLabel)): entries.append((uuid, lineLabel ?? label))
                case .failure(let error): invalid.append((index + 1, error.text))
                }
            }
        }
        let source: TrackSource = justCreated ? .created : .operator
        let (added, already) = try await using(try await database.openStore(context)) { store in
            guard fromFile != nil else {
                // A few uuids on the command line: one transaction each, one line each.
                for (uuid, label) in entries {
                    let outcome = try await store.apply(.command(.track(source)), to: uuid, at: context.now(), options: .init())
                    if let label { try await store.setLabel(label, of: uuid) }
                    let state = outcome?.machine.phase.rawValue ?? "?"
                    context.print(
                        outcome?.created == true
                            ? "tracking \(uuid)"
                            : "already tracked \(uuid) (\(state))\(justCreated ? "" : "; poll requested")"
                    )
                }
                return (0, 0)
            }
            // A backfill: one transaction per batch, each batch's Books in uuid order (the order
            // every other writer locks rows in, so two backfills or a poll tightening never
            // deadlock with it), a repeated uuid once with its last label.
            var added = 0
            for start in stride(from: 0, to: entries.count, by: Self.batchSize) {
                var labels: [BookUUID: String?] = [:]
                for (uuid, label) in entries[start..<min(start + Self.batchSize, entries.count)] {
                    labels[uuid] = label ?? labels[uuid] ?? nil
                }
                let batch = labels.sorted { $0.key.rawValue < $1.key.rawValue }.map { (uuid: $0.key, label: $0.value) }
                added += try await store.track(batch, source: source, at: context.now()).filter { $0 }.count
            }
            return (added, entries.count - added)
        }
        guard fromFile != nil else { return }
        for (line, text) in invalid.prefix(20) { context.printError("line \(line): '\(text)' is not a Book uuid") }
        if invalid.count > 20 { context.printError("... and \(invalid.count - 20) more invalid lines") }
        context.print("added \(added), already tracked \(already), invalid \(invalid.count)")
        if !invalid.isEmpty { throw CLIError.runtime("\(invalid.count) line(s) of \(fromFile ?? "-") name no Book (the others were tracked)") }
    }
}

/// `bookwatch untrack UUID...`: stop watching Books; their stored analytics stay.
struct UntrackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "untrack",
        abstract: "Stop watching Books (stored analytics are kept)."
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var books: BookUUIDArguments

    func run() async throws {
        let context = CLIContext.current
        let uuids = try books.parsed()
        guard let store = try await database.openExistingStore(context) else {
            for uuid in uuids { context.print("not tracked \(uuid)") }
            return
        }
        try await using(store) { store in
            for uuid in uuids {
                let outcome = try await store.apply(.command(.untrack), to: uuid, at: context.now(), options: .init())
                context.print(outcome == nil ? "not tracked \(uuid)" : "untracked \(uuid)")
            }
        }
    }
}
