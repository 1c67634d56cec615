import ArgumentParser
import BookWatchPostgres
import BookWatchSQLite
import BookWatchStore
import Foundation
import Logging
import Synchronization

/// `bookwatch migrate --to postgres://...`: copies a stopped SQLite node's database into an empty
/// PostgreSQL database, so replicas carry on where it stopped: every Book (tombstones included),
/// document, label, delivery, job, result, page, notification and the shared estimate, ids kept.
/// Nothing is retrieved again after the switch: a complete Book's results and jobs come along.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy a stopped SQLite node's database (--database) into an empty PostgreSQL database.",
        discussion: """
            Stop serve first: a database written to in the last minute is refused (--force to copy anyway). \
            The copy is one PostgreSQL transaction: a failure leaves the destination empty. Claims the stopped \
            node held are released first (as its own restart would). The SQLite file is left in place as a backup.
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .customLong("to"), help: ArgumentHelp("The PostgreSQL database to fill: postgres://user:password@host:port/db.", valueName: "url"))
    var destination: String
    @Flag(help: "Copy even when the SQLite database was written to in the last minute (serve may still be running).")
    var force = false

    /// Rows read from SQLite per batch (results and pages carry bodies: fewer).
    static func batchSize(_ table: String) -> Int { ["analytics_results", "analytics_pages"].contains(table) ? 50 : 1_000 }

    /// How recent a write makes the source look alive.
    static let quietPeriod: TimeInterval = 60

    func validate() throws {
        guard case .postgres = DatabaseLocation(destination) else {
            throw ValidationError("--to '\(DatabaseLocation(destination).redacted)' is not a postgres:// URL")
        }
    }

    func run() async throws {
        let context = CLIContext.current
        let (path, setting) = database.resolvedPath(context)
        guard case .sqlite = DatabaseLocation(path) else { throw CLIError.usage("\(setting): migrate copies from a SQLite file") }
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError.usage("\(setting): no such file") }
        let source = try database.openSQLiteStore(context)
        let now = context.now()
        if let newest = try await source.newestWrite(), now.timeIntervalSince(newest) < Self.quietPeriod, !force {
            throw CLIError.runtime(
                "\(setting) was written to \(Int(max(0, now.timeIntervalSince(newest)))) s ago: stop serve first (or --force)"
            )
        }
        // The stopped node's claims are released as its own restart would: nobody holds them now.
        try await source.recoverLeases(owner: "bookwatch-migrate", now: now)
        let target = DatabaseLocation(destination).redacted
        let postgres: PostgresBookStore
        do {
            postgres = try await PostgresBookStore.open(
                url: destination,
                logger: Logger(label: "bookwatch.migrate") { _ in SwiftLogNoOpLogHandler() }
            )
        } catch let error as StoreError {
            throw CLIError.opening(error, setting: "--to \(target)")
        }
        let reader = TableReader(source: source)
        let counts: [String: Int]
        do {
            counts = try await postgres.importTables { try await reader.next() }
        } catch let error as StoreError {
            try? await postgres.close()
            throw CLIError.runtime("--to \(target): \(error); nothing was copied")
        }
        try await postgres.close()
        try await source.close()
        for table in CopiedTables.all { context.print("\(table): \(counts[table] ?? 0) rows") }
        context.print("copied \(path) into \(target): start serve with BOOKWATCH_DATABASE set to it (keep \(path) as a backup)")
    }
}

/// Reads the copied tables of a SQLite store in batches, one table after another (the importer
/// asks for the next batch until none is left).
final class TableReader: Sendable {
    private struct Position {
        var table = 0
        var offset = 0
        var columns: [String]?
    }

    private let source: SQLiteBookStore
    private let position = Mutex(Position())

    init(source: SQLiteBookStore) { self.source = source }

    /// The next batch, or nil after the last table.
    func next() async throws -> TableBatch? {
        while true {
            let at = position.withLock { $0 }
            guard at.table < CopiedTables.all.count else { return nil }
            let table = CopiedTables.all[at.table]
            let columns: [String]
            if let known = at.columns { columns = known } else { columns = try await source.columns(of: table) }
            let limit = MigrateCommand.batchSize(table)
            let rows = try await source.rows(of: table, columns: columns, offset: at.offset, limit: limit)
            position.withLock { position in
                position =
                    rows.count < limit ? Position(table: at.table + 1) : Position(table: at.table, offset: at.offset + rows.count, columns: columns)
            }
            if !rows.isEmpty { return TableBatch(table: table, columns: columns, rows: rows) }
        }
    }
}
