import BookWatchClocks
import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import ServiceLifecycle

/// Keeps `bookwatch_documents` current without scanning the documents table at every scrape:
/// counts once at start, then every `interval`, or 100 times as long as the last count took when
/// that is longer (at most 1% of a core: 1.5 s a count at 100k Books, so every 150 s), never
/// longer than `ceiling`; a failed count is tried again after `interval`. Replicas sharing a
/// database each count; the dashboards take `max` over them. The scrape reads only indexed
/// counts (`StoreGauges`).
public struct DocumentGaugeRefresher: Service {
    let store: any BookRegistry
    let metrics: BookWatchMetrics
    let clock: any WallClock
    let interval: TimeInterval
    let ceiling: TimeInterval
    let logger: Logger

    /// A refresher of `metrics`' documents gauge from `store` every `interval` seconds (paced
    /// out to at most `ceiling` on a large database).
    public init(
        store: any BookRegistry,
        metrics: BookWatchMetrics,
        clock: any WallClock,
        interval: TimeInterval = 60,
        ceiling: TimeInterval = 900,
        logger: Logger
    ) {
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.interval = interval
        self.ceiling = max(interval, ceiling)
        self.logger = logger
    }

    /// One count; answers whether it succeeded (a database that cannot be read leaves the gauge
    /// at its last value).
    @discardableResult
    public func refresh() async -> Bool {
        do {
            metrics.update(documents: try await store.documentCounts())
            return true
        } catch {
            logger.warning("documents gauge not refreshed", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// The wait after a count that took `took` seconds: `interval` after a failure, else 100
    /// times the count's time, between `interval` and `ceiling`.
    package func pause(afterCountTaking took: TimeInterval, succeeded: Bool) -> TimeInterval {
        succeeded ? min(ceiling, max(interval, 100 * took)) : interval
    }

    /// Counts until graceful shutdown.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    // Real elapsed time: the pacing bounds the cost in CPU, whatever the clock says.
                    let started = ContinuousClock.now
                    let succeeded = await refresh()
                    let took = (ContinuousClock.now - started) / .seconds(1)
                    try await clock.sleep(for: pause(afterCountTaking: took, succeeded: succeeded))
                }
            }
        } catch is CancellationError {
            // Graceful shutdown cancels the sleep: a clean finish.
        }
    }
}
