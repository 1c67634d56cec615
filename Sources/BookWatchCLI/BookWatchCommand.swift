import ArgumentParser
import BookWatchService
import Foundation

/// The `bookwatch` command line.
public struct BookWatchCommand: AsyncParsableCommand {
    /// The command tree: `serve`, `status`, `track`, `demo`, `bench` and the rest.
    public static let configuration = CommandConfiguration(
        commandName: "bookwatch",
        abstract: "Watch Ocrolus Books until every Document has finished, then retrieve their analytics once.",
        discussion: "Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.",
        version: BookWatchVersion.current,
        subcommands: [
            TrackCommand.self, UntrackCommand.self, StatusCommand.self, ServeCommand.self, ConfigCommand.self, AnalyticsCommand.self,
            RetryCommand.self, WebhooksCommand.self, MigrateCommand.self, SimulateCommand.self, DemoCommand.self, BenchCommand.self,
        ]
    )

    /// The root command (ArgumentParser makes it).
    public init() {}

    /// Parses and runs `arguments` (without the program name) in the current `CLIContext`,
    /// printing errors and help, and returns the process exit code.
    public static func run(arguments: [String]) async -> Int32 {
        let context = CLIContext.current
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as CLIError {
            context.printError("bookwatch: \(error.message)")
            return error.exitCode
        } catch {
            let code = exitCode(for: error).rawValue
            let message = fullMessage(for: error)
            if code == 0 {
                if !message.isEmpty { context.print(message) }
                return 0
            }
            if !message.isEmpty { context.printError(message) }
            // ArgumentParser uses EX_USAGE (64) for parse and validation errors; our contract is 2.
            return code == 64 ? 2 : (code == 0 ? 0 : 1)
        }
    }
}
