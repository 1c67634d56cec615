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
            Stop serve first: a database written to in the last minute, or with a claim still held, is refused \
            (--force to copy anyway). The copy reads one snapshot of the file and writes one PostgreSQL transaction: \
            a failure leaves the destination empty. Claims the stopped node held are released first (as its own \
            restart would). The SQLite file is otherwise left as it was, as a backup.
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .customLong("to"), help: ArgumentHelp("The PostgreSQL database to fill: postgres://user:password@host:port/db.", valueName: "url"))
    var destination: String
    @Flag(help: "Copy even when the SQLite database was written to in the last minute or holds a claim (serve may still be running).")
    var force = false
    @Option(
        name: .customLong("batch-rows"),
        help: ArgumentHelp("Rows read and written per batch (default 1000; results and pages 50).", valueName: "n")
    )
    var batchRows: Int?

    /// Rows read from SQLite per batch (results and pages carry bodies: fewer), unless `--batch-rows`.
    static func batchSize(_ table: String, override: Int?) -> Int {
        override ?? (["analytics_results", "analytics_pages"].contains(table) ? 50 : 1_000)
    }

    /// How recent a write makes the source look alive.
    static let quietPeriod: TimeInterval = 60

    func validate() throws {
        try validatePostgresURL(destination, option: "--to")
        if let batchRows, batchRows < 1 { throw ValidationError("--batch-rows must be at least 1, not \(batchRows)") }
    }

    func run() async throws {
        let context = CLIContext.current
        let (path, setting) = database.resolvedPath(context)
        guard case .sqlite = DatabaseLocation(path) else { throw CLIError.usage("\(setting): migrate copies from a SQLite file") }
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError.usage("\(setting): no such file") }
        let source = try database.openSQLiteStore(context)
        let now = context.now()
        let (newest, held) = try await source.activity(now: now)
        if !force, let newest, now.timeIntervalSince(newest) < Self.quietPeriod {
            throw CLIError.runtime(
                "\(setting) was written to \(Int(max(0, now.timeIntervalSince(newest)))) s ago: stop serve first (or --force)"
            )
        }
        if !force, let held {
            throw CLIError.runtime(
                "\(setting) has a claim held until \(BookStatusEntry.rfc3339(held)): stop serve first, or wait for it (or --force)"
            )
        }
        // The stopped node's claims are released as its own restart would: nobody holds them now.
        try await source.recoverLeases(owner: "bookwatch-migrate", now: now)
        let export = try source.export()
        let unknown = Set(try await export.tables()).subtracting(CopiedTables.all + CopiedTables.excluded)
        guard unknown.isEmpty else {
            throw CLIError.runtime(
                "\(setting) has tables this version does not copy: \(unknown.sorted().joined(separator: ", ")) (migrate with the version that made them)"
            )
        }
        var expected: [String: Int] = [:]
        for table in CopiedTables.all { expected[table] = try await export.count(of: table) }
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
        let counts: [String: Int]
        do {
            counts = try await postgres.importTables(expected: expected) { [batchRows] in
                let reader = TableReader(source: export, batchRows: batchRows)
                return { try await reader.next() }
            }
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

/// Reads the copied tables of a SQLite snapshot in batches, one table after another, each
/// batch after the key the previous one ended on (the importer asks until none is left).
final class TableReader: Sendable {
    private struct Position {
        var table = 0
        var after: [SQLValue]?
        var columns: [String]?
    }

    private let source: SQLiteExport
    private let batchRows: Int?
    private let position = Mutex(Position())

    init(source: SQLiteExport, batchRows: Int?) {
        self.source = source
        self.batchRows = batchRows
    }

    /// The next batch, or nil after the last table.
    func next() async throws -> TableBatch? {
        while true {
            let at = position.withLock { $0 }
            guard at.table < CopiedTables.all.count else { return nil }
            let table = CopiedTables.all[at.table]
            let columns: [String]
            if let known = at.columns { columns = known } else { columns = try await source.columns(of: table) }
            let limit = MigrateCommand.batchSize(table, override: batchRows)
            let (rows, last) = try await source.rows(of: table, columns: columns, after: at.after, limit: limit)
            position.withLock { position in
                position = rows.count < limit ? Position(table: at.table + 1) : Position(table: at.table, after: last, columns: columns)
            }
            if !rows.isEmpty { return TableBatch(table: table, columns: columns, rows: rows) }
        }
    }
}
