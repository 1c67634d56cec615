import ArgumentParser
import BookWatchStore

/// A failure a command reports, with the exit code it maps to (0 ok, 1 runtime, 2 usage/config).
public struct CLIError: Error, CustomStringConvertible {
    /// A usage error (exit 2) or a runtime one (exit 1).
    public enum Kind: Sendable { case usage, runtime }
    /// Which one.
    public let kind: Kind
    /// What to tell the user.
    public let message: String

    /// A usage error: bad flags or settings (exit 2).
    public static func usage(_ message: String) -> CLIError { CLIError(kind: .usage, message: message) }
    /// A runtime error: the database or Ocrolus failed (exit 1).
    public static func runtime(_ message: String) -> CLIError { CLIError(kind: .runtime, message: message) }

    /// The message.
    public var description: String { message }

    /// 2 for usage errors, 1 otherwise.
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
