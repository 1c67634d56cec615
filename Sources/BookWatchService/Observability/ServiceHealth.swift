import BookWatchClocks
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import ServiceLifecycle
import Synchronization

/// What `/readyz` reports: whether the database takes writes (and, later, tokens and webhooks).
public final class ServiceHealth: Sendable {
    /// What readiness and the metrics read.
    public struct Snapshot: Sendable, Equatable {
        /// Whether the last write succeeded.
        public var databaseWritable: Bool
        /// Why it failed, while it does.
        public var databaseError: String?
        /// When the last delivery was stored.
        public var lastWebhookAt: Date?
    }

    private let state = Mutex(Snapshot(databaseWritable: true, databaseError: nil, lastWebhookAt: nil))
    let webhooksSilentFlag = Mutex(false)
    /// Whether the watcher finds webhooks silent (polling took over).
    public var webhooksSilent: Bool { webhooksSilentFlag.withLock { $0 } }

    /// When this process started (webhook silence counts from here until the first webhook).
    public let startedAt: Date

    /// The fingerprints (`WebhookVerifier.fingerprint`) of the webhook secrets this process
    /// accepts, for `/readyz`.
    public let webhookSecretFingerprints: [String]

    /// Healthy, started at `startedAt`, accepting the secrets of `webhookSecretFingerprints`.
    public init(startedAt: Date = Date(), webhookSecretFingerprints: [String] = []) {
        self.startedAt = startedAt
        self.webhookSecretFingerprints = webhookSecretFingerprints
    }

    /// The state now.
    public var snapshot: Snapshot { state.withLock { $0 } }
    /// Ready while the database can be written (`/readyz`).
    public var isReady: Bool { snapshot.databaseWritable }

    /// A write failed: not ready until one succeeds.
    public func databaseFailed(_ error: any Error) {
        state.withLock {
            $0.databaseWritable = false
            $0.databaseError = String(describing: error)
        }
    }

    /// A write succeeded: ready again.
    public func databaseRecovered() {
        state.withLock {
            $0.databaseWritable = true
            $0.databaseError = nil
        }
    }

    /// A delivery was stored at `date`.
    public func webhookReceived(at date: Date) { state.withLock { $0.lastWebhookAt = date } }
}

/// While the database is unwritable, tries a tiny write every `interval` and flips readiness back
/// when it succeeds (a load balancer that stopped sending webhooks would otherwise never let it
/// recover).
public struct DatabaseProbe: Service {
    let store: any StoreMaintenance
    let health: ServiceHealth
    let clock: any WallClock
    let interval: TimeInterval
    let logger: Logger

    /// A probe of `store` every `interval` while `health` says unwritable.
    public init(store: any StoreMaintenance, health: ServiceHealth, clock: any WallClock, interval: TimeInterval = 5, logger: Logger) {
        self.store = store
        self.health = health
        self.clock = clock
        self.interval = interval
        self.logger = logger
    }

    /// One probe: write, and record the result.
    public func probe() async {
        do {
            try await store.probeWritable(at: clock.now())
            if !health.isReady {
                health.databaseRecovered()
                logger.notice("database writable again; ready")
            }
        } catch {
            if health.isReady { logger.error("database not writable; not ready", metadata: ["error": "\(error)"]) }
            health.databaseFailed(error)
        }
    }

    /// Probes until graceful shutdown.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    if !health.isReady { await probe() }
                    try await clock.sleep(for: interval)
                }
            }
        } catch is CancellationError {
            // Graceful shutdown cancels the sleep: a clean finish.
        }
    }
}
