import ArgumentParser
import BookWatchCore
import BookWatchStore

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
    @OptionGroup var books: BookUUIDArguments
    @Flag(name: .customLong("new"), help: "The Books were just created: nothing to see yet, so spend no status call now.")
    var justCreated = false

    func run() async throws {
        let context = CLIContext.current
        let uuids = try books.parsed()
        try await using(try await database.openStore(context)) { store in
            for uuid in uuids {
                let source: TrackSource = justCreated ? .created : .operator
                let outcome = try await store.apply(.command(.track(source)), to: uuid, at: context.now(), options: .init())
                let state = outcome?.machine.phase.rawValue ?? "?"
                context.print(
                    outcome?.created == true
                        ? "tracking \(uuid)"
                        : "already tracked \(uuid) (\(state))\(justCreated ? "" : "; poll requested")"
                )
            }
        }
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
