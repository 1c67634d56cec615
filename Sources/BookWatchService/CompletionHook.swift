import BookWatchCore
import BookWatchStore
import Foundation
import Logging

/// Runs `--on-complete COMMAND` (through `/bin/sh -c`) once per stored retrieval, with
/// `BOOKWATCH_BOOK_UUID`, `BOOKWATCH_GENERATION` and `BOOKWATCH_IDEMPOTENCY_KEY` in its environment.
/// The outbox row is written with the completion, and marked delivered only after the command
/// exits 0, so delivery is at least once across crashes; the key lets the receiver dedupe. Each
/// retrieval is claimed before its command runs (for `lease`), so replicas sharing a database run
/// it once between them, not once each.
public struct CompletionHook: Sendable {
    public let command: String
    let store: any BookStore
    let logger: Logger
    let owner: String
    /// How long a claim holds: longer than the command may take (a claim that lapses mid-run lets
    /// another replica run it again).
    let lease: TimeInterval

    public init(command: String, store: any BookStore, logger: Logger, owner: String = "hook-\(UInt32.random(in: .min ... .max))",
                lease: TimeInterval = 900) {
        self.command = command
        self.store = store
        self.logger = logger
        self.owner = owner
        self.lease = lease
    }

    /// Hands on pending retrievals, oldest first, until one fails or none is left; returns how
    /// many were delivered.
    @discardableResult
    public func runPending(now: @Sendable () -> Date) async throws -> Int {
        var delivered = 0
        while delivered < 64, let notification = try await store.claimNotification(owner: owner, now: now(), lease: lease) {
            let error = await run(notification)
            try await store.recordNotification(notification, at: now(), error: error)
            if let error {
                logger.warning("on-complete command failed; will retry", metadata: [
                    "book_uuid": "\(notification.bookUUID)", "generation": "\(notification.generation)", "error": "\(error)"])
                break  // keep order; retried next round
            }
            delivered += 1
        }
        return delivered
    }

    /// nil when the command exited 0, else what went wrong.
    func run(_ notification: PendingNotification) async -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        var environment = ProcessInfo.processInfo.environment
        environment["BOOKWATCH_BOOK_UUID"] = notification.bookUUID.rawValue
        environment["BOOKWATCH_GENERATION"] = String(notification.generation)
        environment["BOOKWATCH_IDEMPOTENCY_KEY"] = notification.idempotencyKey
        process.environment = environment
        return await withCheckedContinuation { continuation in
            process.terminationHandler = { finished in
                continuation.resume(returning: finished.terminationStatus == 0 ? nil : "exit status \(finished.terminationStatus)")
            }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(returning: "cannot start: \(error)")
            }
        }
    }
}
