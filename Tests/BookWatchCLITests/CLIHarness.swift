import Foundation
import OcrolusAPI
import Synchronization

@testable import BookWatchCLI

/// Runs `bookwatch` in-process with its own environment, clock and captured output.
final class CLIHarness: Sendable {
    let directory: String
    let now: Date
    private let out = Mutex("")
    private let err = Mutex("")

    init(now: Date = Date(timeIntervalSince1970: 1_774_000_000)) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        directory = base.path
        self.now = now
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    var databasePath: String { directory + "/bookwatch.sqlite" }
    var standardOutput: String { out.withLock { $0 } }
    var standardError: String { err.withLock { $0 } }

    /// Runs the command line, returning its exit code; output accumulates in the buffers.
    func run(
        _ arguments: [String],
        environment: [String: String]? = nil,
        terminal: Bool = false,
        sleep: @escaping @Sendable (TimeInterval) async throws -> Void = { _ in },
        transport: (any HTTPTransport)? = nil
    ) async -> Int32 {
        out.withLock { $0 = "" }
        err.withLock { $0 = "" }
        let context = CLIContext(
            environment: environment ?? ["BOOKWATCH_DATABASE": databasePath],
            now: { [now] in now },
            standardOutput: TextSink { text in self.out.withLock { $0 += text } },
            standardError: TextSink { text in self.err.withLock { $0 += text } },
            outputIsTerminal: terminal,
            sleep: sleep,
            transport: transport
        )
        return await CLIContext.$current.withValue(context) {
            await BookWatchCommand.run(arguments: arguments)
        }
    }

    /// The database file's bytes (nil when it does not exist), to prove nothing was written.
    func databaseBytes() -> Data? { FileManager.default.contents(atPath: databasePath) }
}
