import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import Subprocess
import Synchronization
import SystemPackage

/// Hands each stored retrieval on: writes its results into `--export-dir` (`ResultExporter`,
/// idempotent by file name), then runs `--on-complete COMMAND` (through `/bin/sh -c`) with
/// `BOOKWATCH_BOOK_UUID`, `BOOKWATCH_GENERATION` and `BOOKWATCH_IDEMPOTENCY_KEY` in its environment.
/// The outbox row is written with the completion, and marked delivered only after the export and
/// the command succeeded, so delivery is at least once across crashes; the key lets the receiver
/// dedupe. Each retrieval is claimed first (for `lease`), so replicas sharing a database hand it
/// on once between them, not once each.
public struct CompletionHook: Sendable {
    /// The `--on-complete` command (`sh -c`), if any.
    public let command: String?
    /// The `--export-dir` writer, if any.
    public let exporter: ResultExporter?
    let store: any NotificationStore & BookRegistry
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

    /// A hook exporting with `exporter` and running `command` once per stored retrieval (claimed
    /// by `owner` for `lease`), the command stopped after `timeout`.
    public init(
        command: String?,
        exporter: ResultExporter? = nil,
        store: any NotificationStore & BookRegistry,
        logger: Logger,
        owner: String = "hook-\(UInt32.random(in: .min ... .max))",
        lease: TimeInterval = 900,
        timeout: TimeInterval = 60
    ) {
        self.timeout = timeout
        self.command = command
        self.exporter = exporter
        self.store = store
        self.logger = logger
        self.owner = owner
        self.lease = lease
    }

    /// Hands on pending retrievals, oldest first, at most 64 a call; one that fails waits its own
    /// backoff (5 s doubling, at most an hour) while the others go on. Returns how many were run.
    /// Shutdown stops the claiming, not the command in hand: it runs to its end (or its timeout)
    /// and its outcome is recorded, like every loop's item in hand.
    @discardableResult
    public func runPending(now: @escaping @Sendable () -> Date) async throws -> Int {
        var ran = 0
        while ran < 64, let notification = try await store.claimNotification(owner: owner, now: now(), lease: lease) {
            ran += 1
            try await Task { try await self.runAndRecord(notification, now: now) }.value
        }
        return ran
    }

    private func runAndRecord(_ notification: PendingNotification, now: @Sendable () -> Date) async throws {
        guard let error = await run(notification) else {
            try await store.recordNotification(notification, at: now(), error: nil, retryAt: nil)
            return
        }
        let wait = Self.retryDelay(attempts: notification.attempts + 1)
        try await store.recordNotification(notification, at: now(), error: error, retryAt: now().addingTimeInterval(wait))
        logger.warning(
            "handing on a retrieval failed (export or on-complete command); will retry",
            metadata: [
                "book_uuid": "\(notification.bookUUID)", "generation": "\(notification.generation)", "error": "\(error)",
                "retry_in_s": "\(Int(wait))",
            ]
        )
    }

    /// The command's process id, once it runs (its process group's id too).
    final class Leader: Sendable {
        let pid = Mutex<pid_t?>(nil)
    }

    /// 5 s doubling per failed attempt, at most an hour.
    static func retryDelay(attempts: Int) -> TimeInterval {
        min(3600, 5 * pow(2, Double(min(max(attempts - 1, 0), 20))))
    }

    /// nil when the command exited 0, else what went wrong.
    ///
    /// Run through swift-subprocess in a process group of its own, its output and errors on the
    /// service's own: at the timeout the run is cancelled, and its teardown sequence sends SIGTERM
    /// to the group and SIGKILL 5 s later if the shell is still there; whatever of the group
    /// outlived the shell gets SIGKILL after. Should the group signals miss the shell (it left
    /// the group), the shell itself gets SIGKILL 10 s after the timeout: it cannot have been reaped
    /// yet, so its pid is still its own.
    func run(_ notification: PendingNotification) async -> String? {
        if let exporter {
            do {
                let results = try await store.analyticsResults(for: notification.bookUUID, endpoint: nil)
                for result in results where result.generation == notification.generation { try exporter.export(result) }
            } catch {
                return "export: \(error)"
            }
        }
        guard let command else { return nil }
        return await runCommand(command, notification)
    }

    /// Runs the command for `notification`: nil when it exited 0, else what went wrong.
    func runCommand(_ command: String, _ notification: PendingNotification) async -> String? {
        var environment: [Subprocess.Environment.Key: String] = [:]
        for (name, value) in ProcessInfo.processInfo.environment where Self.passedEnvironment.contains(name) {
            if let key = Subprocess.Environment.Key(rawValue: name) { environment[key] = value }
        }
        environment["BOOKWATCH_BOOK_UUID"] = notification.bookUUID.rawValue
        environment["BOOKWATCH_GENERATION"] = String(notification.generation)
        environment["BOOKWATCH_IDEMPOTENCY_KEY"] = notification.idempotencyKey
        var options = Subprocess.PlatformOptions()
        options.processGroupID = 0
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(5))]
        let configuration = Subprocess.Configuration(
            executable: .path("/bin/sh"),
            arguments: ["-c", command],
            environment: .custom(environment),
            platformOptions: options
        )
        let timeout = self.timeout
        let leader = Leader()
        enum Outcome: Sendable {
            case exited(TerminationStatus)
            case timedOut
            case failed(String)
        }
        let outcome = await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                do {
                    let result = try await Subprocess.run(
                        configuration,
                        input: .none,
                        output: .currentStandardOutput,
                        error: .currentStandardError
                    ) { execution in
                        leader.pid.withLock { $0 = execution.processIdentifier.value }
                    }
                    return .exited(result.terminationStatus)
                } catch is CancellationError {
                    return nil
                } catch {
                    return Task.isCancelled ? nil : .failed("cannot start: \(error)")
                }
            }
            group.addTask {
                do { try await Task.sleep(for: .seconds(timeout)) } catch { return nil }
                return .timedOut
            }
            var first: Outcome?
            var backstop: Task<Void, Never>?
            for await finished in group {
                guard let finished, first == nil else { continue }
                first = finished
                group.cancelAll()
                if case .timedOut = finished {
                    backstop = Task {
                        guard (try? await Task.sleep(for: .seconds(10))) != nil, let pid = leader.pid.withLock({ $0 }), pid > 1 else { return }
                        kill(pid, SIGKILL)
                    }
                }
            }
            backstop?.cancel()
            return first
        }
        switch outcome {
        case .exited(.exited(0)):
            return nil
        case .exited(.exited(let code)):
            return "exit status \(code)"
        case .exited(let status):
            return "ended by \(status)"
        case .failed(let reason):
            return reason
        case .timedOut, nil:
            // The shell is gone; whatever of its group ignored SIGTERM goes now. Only the group:
            // the shell's own pid is free for reuse once it was reaped.
            if let pid = leader.pid.withLock({ $0 }), pid > 1 { kill(-pid, SIGKILL) }
            return "timed out after \(Int(timeout)) s"
        }
    }
}
