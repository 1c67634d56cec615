import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import Synchronization

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
    /// `BOOKWATCH_ON_COMPLETE_TIMEOUT`: a command still running this long is stopped (SIGTERM, then
    /// SIGKILL 5 s later) and counts as failed.
    let timeout: TimeInterval
    /// The variables the command sees besides the three `BOOKWATCH_*` ones (never the process's
    /// secrets: `OCROLUS_CLIENT_SECRET`, the database URL...).
    static let passedEnvironment = ["PATH", "HOME"]

    public init(command: String, store: any BookStore, logger: Logger, owner: String = "hook-\(UInt32.random(in: .min ... .max))",
                lease: TimeInterval = 900, timeout: TimeInterval = 60) {
        self.timeout = timeout
        self.command = command
        self.store = store
        self.logger = logger
        self.owner = owner
        self.lease = lease
    }

    /// Hands on pending retrievals, oldest first, at most 64 a call; one that fails waits its own
    /// backoff (5 s doubling, at most an hour) while the others go on. Returns how many were run.
    @discardableResult
    public func runPending(now: @Sendable () -> Date) async throws -> Int {
        var ran = 0
        while ran < 64, let notification = try await store.claimNotification(owner: owner, now: now(), lease: lease) {
            let error = await run(notification)
            ran += 1
            guard let error else {
                try await store.recordNotification(notification, at: now(), error: nil, retryAt: nil)
                continue
            }
            let wait = Self.retryDelay(attempts: notification.attempts + 1)
            try await store.recordNotification(notification, at: now(), error: error, retryAt: now().addingTimeInterval(wait))
            logger.warning("on-complete command failed; will retry", metadata: [
                "book_uuid": "\(notification.bookUUID)", "generation": "\(notification.generation)", "error": "\(error)",
                "retry_in_s": "\(Int(wait))"])
        }
        return ran
    }

    /// Set by the watchdog when it stopped the command.
    final class Flag: Sendable {
        let value = Mutex(false)
    }

    /// Signals `pid`'s process group when it leads one (Foundation's `Process` spawns the child in
    /// a group of its own on Linux), else `pid` alone; never pid 0 or 1 (`kill(0)` is our own group).
    static func signal(_ pid: Int32, _ signal: Int32) {
        guard pid > 1 else { return }
        if kill(-pid, signal) != 0 { kill(pid, signal) }
    }

    /// 5 s doubling per failed attempt, at most an hour.
    static func retryDelay(attempts: Int) -> TimeInterval {
        min(3600, 5 * pow(2, Double(min(max(attempts - 1, 0), 20))))
    }

    /// nil when the command exited 0, else what went wrong.
    func run(_ notification: PendingNotification) async -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let inherited = ProcessInfo.processInfo.environment
        var environment = inherited.filter { Self.passedEnvironment.contains($0.key) }
        environment["BOOKWATCH_BOOK_UUID"] = notification.bookUUID.rawValue
        environment["BOOKWATCH_GENERATION"] = String(notification.generation)
        environment["BOOKWATCH_IDEMPOTENCY_KEY"] = notification.idempotencyKey
        process.environment = environment
        let timeout = self.timeout
        let fired = Flag()
        // Stops a command that outlives the timeout: SIGTERM, then SIGKILL 5 s later, to its
        // process group when it leads one (the shell's own children too), else to the shell.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(timeout))
            guard process.isRunning else { return }
            fired.value.withLock { $0 = true }
            Self.signal(process.processIdentifier, SIGTERM)
            try await Task.sleep(for: .seconds(5))
            if process.isRunning { Self.signal(process.processIdentifier, SIGKILL) }
        }
        defer { watchdog.cancel() }
        return await withCheckedContinuation { continuation in
            process.terminationHandler = { finished in
                if fired.value.withLock({ $0 }) {
                    // The shell is gone; whatever of its group ignored SIGTERM goes now.
                    Self.signal(finished.processIdentifier, SIGKILL)
                    continuation.resume(returning: "timed out after \(Int(timeout)) s")
                } else {
                    continuation.resume(returning: finished.terminationStatus == 0 ? nil : "exit status \(finished.terminationStatus)")
                }
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
