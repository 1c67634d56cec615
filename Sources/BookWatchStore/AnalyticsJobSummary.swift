import BookWatchCore
import Foundation

/// Analytics job states as stored and shown by `status`.
public enum AnalyticsJobState: String, Sendable, CaseIterable {
    case pending, running, complete, failed, superseded
}

/// The analytics job of a Book's current generation, as `status` shows it.
public struct AnalyticsJobSummary: Sendable, Equatable {
    /// The generation the job retrieves.
    public var generation: Int
    /// Where the job is.
    public var state: AnalyticsJobState
    /// Real errors so far.
    public var attempts: Int
    /// When it is next due, while pending.
    public var dueAt: Date?
    /// When its results were stored, once complete.
    public var retrievedAt: Date?
    /// The last error, if any.
    public var lastError: String?

    /// A job as `status` shows it.
    public init(
        generation: Int,
        state: AnalyticsJobState,
        attempts: Int,
        dueAt: Date?,
        retrievedAt: Date?,
        lastError: String?
    ) {
        self.generation = generation
        self.state = state
        self.attempts = attempts
        self.dueAt = dueAt
        self.retrievedAt = retrievedAt
        self.lastError = lastError
    }
}
