import ArgumentParser
import BookWatchCore
import BookWatchStore
import Foundation

/// `--database PATH`, shared by every subcommand; env `BOOKWATCH_DATABASE`, default `./bookwatch.sqlite`.
public struct DatabaseOptions: ParsableArguments {
    public static let environmentName = "BOOKWATCH_DATABASE"
    public static let defaultPath = "./bookwatch.sqlite"

    @Option(name: .long, help: ArgumentHelp(
        "SQLite database file (env BOOKWATCH_DATABASE; default ./bookwatch.sqlite).", valueName: "path"))
    var database: String?

    public init() {}

    /// Flag, then environment, then the default.
    func resolvedPath(_ context: CLIContext) -> (path: String, setting: String) {
        if let database { return (database, "--database \(database)") }
        if let fromEnvironment = context.environment[Self.environmentName], !fromEnvironment.isEmpty {
            return (fromEnvironment, "\(Self.environmentName)=\(fromEnvironment)")
        }
        return (Self.defaultPath, "--database \(Self.defaultPath) (default)")
    }

    /// Opens the store, creating the file when needed; errors name the setting.
    func openStore(_ context: CLIContext) throws -> SQLiteBookStore {
        let (path, setting) = resolvedPath(context)
        do {
            return try SQLiteBookStore(path: path)
        } catch {
            throw CLIError.opening(error, setting: setting)
        }
    }

    /// Opens the store only when the file exists (readers must not create databases).
    func openExistingStore(_ context: CLIContext) throws -> SQLiteBookStore? {
        let (path, _) = resolvedPath(context)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try openStore(context)
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
