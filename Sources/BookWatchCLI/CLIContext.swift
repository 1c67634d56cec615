import Foundation
import OcrolusAPI

/// What a command may read from the world: environment, clock, output streams.
///
/// Injected through a task-local so that tests run commands in-process with their own
/// environment, a fixed clock and captured output.
public struct CLIContext: Sendable {
    /// The environment variables the command sees.
    public var environment: [String: String]
    /// The clock.
    public var now: @Sendable () -> Date
    /// Where output goes.
    public var standardOutput: TextSink
    /// Where errors go.
    public var standardError: TextSink
    /// Whether standard output is a terminal (colours, redraws).
    public var outputIsTerminal: Bool
    /// Waits between `status --watch` frames (tests count frames instead of waiting).
    public var sleep: @Sendable (TimeInterval) async throws -> Void
    /// How commands that call Ocrolus or the running service reach them (nil: AsyncHTTPClient;
    /// tests answer in-process from the simulator).
    public var transport: (any HTTPTransport)?

    /// A context; tests pass their own environment, clock and sinks.
    public init(
        environment: [String: String],
        now: @escaping @Sendable () -> Date,
        standardOutput: TextSink,
        standardError: TextSink,
        outputIsTerminal: Bool,
        sleep: @escaping @Sendable (TimeInterval) async throws -> Void = { try await Task.sleep(for: .seconds($0)) },
        transport: (any HTTPTransport)? = nil
    ) {
        self.transport = transport
        self.environment = environment
        self.now = now
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.outputIsTerminal = outputIsTerminal
        self.sleep = sleep
    }

    /// Colours only on a terminal, and never when `NO_COLOR` is set (https://no-color.org).
    public var useColour: Bool {
        outputIsTerminal && (environment["NO_COLOR"].map(\.isEmpty) ?? true)
    }

    /// The real process: its environment, the system clock, stdout and stderr.
    public static var process: CLIContext {
        CLIContext(
            environment: ProcessInfo.processInfo.environment,
            now: { Date() },
            // A closed pipe (`bookwatch ... | head`) ends the output, not the process with a crash.
            standardOutput: TextSink { try? FileHandle.standardOutput.write(contentsOf: Data($0.utf8)) },
            standardError: TextSink { try? FileHandle.standardError.write(contentsOf: Data($0.utf8)) },
            outputIsTerminal: isatty(STDOUT_FILENO) == 1
        )
    }

    /// The context of the running command (the process's own unless a test set one).
    @TaskLocal public static var current: CLIContext = .process

    func print(_ line: String) { standardOutput.write(line + "\n") }
    func printError(_ line: String) { standardError.write(line + "\n") }
}

/// Somewhere text goes.
public struct TextSink: Sendable {
    /// Writes text as given (no newline added).
    public let write: @Sendable (String) -> Void
    /// A sink that hands text to `write`.
    public init(_ write: @escaping @Sendable (String) -> Void) { self.write = write }
}
