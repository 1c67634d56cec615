import ArgumentParser
import BookWatchStore

/// A failure a command reports, with the exit code it maps to (0 ok, 1 runtime, 2 usage/config).
public struct CLIError: Error, CustomStringConvertible {
    public enum Kind: Sendable { case usage, runtime }
    public let kind: Kind
    public let message: String

    public static func usage(_ message: String) -> CLIError { CLIError(kind: .usage, message: message) }
    public static func runtime(_ message: String) -> CLIError { CLIError(kind: .runtime, message: message) }

    public var description: String { message }

    public var exitCode: Int32 { kind == .usage ? 2 : 1 }

    /// A store error at open time is a configuration problem (the `--database` setting).
    static func opening(_ error: StoreError, setting: String) -> CLIError {
        switch error.kind {
        case .missingDirectory, .readOnly, .invalidLocation:
            .usage("\(setting): \(error)")
        default:
            .runtime("\(setting): \(error)")
        }
    }
}
