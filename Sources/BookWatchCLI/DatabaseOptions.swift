import ArgumentParser
import BookWatchCore
import BookWatchPostgres
import BookWatchSQLite
import BookWatchStore
import Foundation
import Logging

/// `--database PATH|URL`, shared by every subcommand; env `BOOKWATCH_DATABASE`, default
/// `./bookwatch.sqlite`. A `postgres://` URL selects the PostgreSQL store.
public struct DatabaseOptions: ParsableArguments {
    /// The setting that names the database.
    public static let environmentName = "BOOKWATCH_DATABASE"
    /// The database when none is named.
    public static let defaultPath = "./bookwatch.sqlite"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "SQLite database file, or postgres://user:password@host:port/db (env BOOKWATCH_DATABASE; default ./bookwatch.sqlite).",
            valueName: "path|url"
        )
    )
    var database: String?

    /// Options as ArgumentParser fills them.
    public init() {}

    /// Flag, then environment, then the default; `setting` names where it came from (password redacted).
    func resolvedPath(_ context: CLIContext) -> (path: String, setting: String) {
        if let database { return (database, "--database \(DatabaseLocation(database).redacted)") }
        if let fromEnvironment = context.environment[Self.environmentName], !fromEnvironment.isEmpty {
            return (fromEnvironment, "\(Self.environmentName)=\(DatabaseLocation(fromEnvironment).redacted)")
        }
        return (Self.defaultPath, "--database \(Self.defaultPath) (default)")
    }

    /// Opens the store, creating a SQLite file when needed; errors name the setting.
    func openStore(_ context: CLIContext) async throws -> any BookStore {
        let (path, setting) = resolvedPath(context)
        return try await StoreOpener.open(path, setting: setting)
    }

    /// Opens the store only when it exists (readers must not create SQLite files; a PostgreSQL
    /// database always exists).
    func openExistingStore(_ context: CLIContext) async throws -> (any BookStore)? {
        let (path, _) = resolvedPath(context)
        if case .sqlite = DatabaseLocation(path), !FileManager.default.fileExists(atPath: path) { return nil }
        return try await openStore(context)
    }

    /// The SQLite store only (the benchmark fill writes a file directly).
    func openSQLiteStore(_ context: CLIContext) throws -> SQLiteBookStore {
        let (path, setting) = resolvedPath(context)
        guard case .sqlite = DatabaseLocation(path) else {
            throw CLIError.usage("\(setting): this command works on a SQLite file only")
        }
        do {
            return try SQLiteBookStore(path: path)
        } catch {
            throw CLIError.opening(error, setting: setting)
        }
    }
}

/// Opens the store `BOOKWATCH_DATABASE` names.
enum StoreOpener {
    static func open(
        _ value: String,
        setting: String,
        schedule: PollSchedule = PollSchedule(),
        busyTimeout: TimeInterval = 5,
        logger: Logger = Logger(label: "bookwatch.store", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> any BookStore {
        do {
            switch DatabaseLocation(value) {
            case .sqlite(let path): return try SQLiteBookStore(path: path, schedule: schedule, busyTimeout: busyTimeout)
            case .postgres(let url): return try await PostgresBookStore.open(url: url, schedule: schedule, logger: logger)
            }
        } catch let error as StoreError {
            throw CLIError.opening(error, setting: setting)
        }
    }
}

/// Runs `body` with `store` and closes it afterwards, whatever happens.
func using<T>(_ store: any BookStore, _ body: (any BookStore) async throws -> T) async throws -> T {
    do {
        let value = try await body(store)
        try? await store.close()
        return value
    } catch {
        try? await store.close()
        throw error
    }
}

/// Parses every argument as a Book uuid, naming each malformed one.
func parseUUIDs(_ arguments: [String]) throws -> [BookUUID] {
    var parsed: [BookUUID] = []
    var bad: [String] = []
    for argument in arguments {
        if let uuid = BookUUID(argument) { parsed.append(uuid) } else { bad.append(argument) }
    }
    guard bad.isEmpty else {
        let list = bad.map { "'\($0)'" }.joined(separator: ", ")
        throw ValidationError("not a uuid: \(list) (expected 8-4-4-4-12 hex digits, e.g. 09c52985-2f05-4022-a738-9277cc335c7e)")
    }
    return parsed
}

/// A URL option checked as the PostgreSQL store will read it, before anything runs: a value that
/// is not a `postgres://` URL, or a malformed one, is a usage error (exit 2) naming the option,
/// not a failed connection. The one check every URL option makes; the message never repeats the
/// value (it may hold a password).
func validatePostgresURL(_ url: String, option: String) throws {
    do {
        try PostgresBookStore.checkURL(url)
    } catch {
        throw ValidationError("\(option): \(error.detail)")
    }
}

/// `validatePostgresURL`, then the rule of the commands that make schemas of their own (the
/// benchmarks, the chaos search): the URL must not name one. `why` says what the command makes.
func validateSchemalessPostgresURL(_ url: String, option: String, why: String) throws {
    try validatePostgresURL(url, option: option)
    guard URLComponents(string: url)?.fragment == nil else { throw ValidationError("\(option) must not end in a #fragment") }
    guard !DatabaseLocation.namesSchema(url) else { throw ValidationError("\(option) must not name a schema: \(why)") }
}
