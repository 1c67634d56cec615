import BookWatchClocks
import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import ServiceLifecycle

/// Keeps `bookwatch_documents` current without scanning the documents table at every scrape:
/// counts once at start, then every `interval`, or 100 times as long as the last count took when
/// that is longer (at most 1% of a core: 1.5 s a count at 100k Books, so every 150 s). Replicas
/// sharing a database each count; the dashboards take `max` over them. The scrape reads only
/// indexed counts (`StoreGauges`).
public struct DocumentGaugeRefresher: Service {
    let store: any BookRegistry
    let metrics: BookWatchMetrics
    let clock: any WallClock
    let interval: TimeInterval
    let logger: Logger

    /// A refresher of `metrics`' documents gauge from `store` every `interval` seconds.
    public init(store: any BookRegistry, metrics: BookWatchMetrics, clock: any WallClock, interval: TimeInterval = 60, logger: Logger) {
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.interval = interval
        self.logger = logger
    }

    /// One count; a database that cannot be read leaves the gauge at its last value.
    public func refresh() async {
        do {
            metrics.update(documents: try await store.documentCounts())
        } catch {
            logger.warning("documents gauge not refreshed", metadata: ["error": "\(error)"])
        }
    }

    /// Counts until graceful shutdown.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    let started = clock.now()
                    await refresh()
                    try await clock.sleep(for: max(interval, 100 * clock.now().timeIntervalSince(started)))
                }
            }
        } catch is CancellationError {
            // Graceful shutdown cancels the sleep: a clean finish.
        }
    }
}
