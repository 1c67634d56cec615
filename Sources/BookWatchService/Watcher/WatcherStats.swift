import BookWatchCore

/// Counters the demo and the metrics read.
public struct WatcherStats: Sendable {
    /// Status calls made, by reason.
    public var polls: [PollReason: Int] = [:]
    /// Status calls that failed.
    public var pollFailures = 0
    /// Generations whose analytics were stored.
    public var retrievals = 0
    /// Analytics answers 425 (not ready).
    public var notReady = 0
    /// Analytics attempts that failed.
    public var analyticsErrors = 0
    /// Inbox rows processed.
    public var inboxProcessed = 0
    /// Books tracked because a webhook named them.
    public var autoTracked = 0
}
