import BookWatchCore
import Foundation

/// The newest `analytics_jobs` row of a Book, with when its results were stored.
package struct StoredJob: Sendable {
    /// `analytics_jobs.generation`.
    package var generation: Int
    /// `analytics_jobs.state`.
    package var state: String
    /// `analytics_jobs.attempts`.
    package var attempts: Int
    /// `analytics_jobs.due_at`.
    package var dueAt: Int64?
    /// `analytics_jobs.last_error`.
    package var lastError: String?
    /// `analytics_jobs.completed_at`.
    package var completedAt: Int64?
    /// The newest `retrieved_at` of the generation's results.
    package var retrievedAt: Int64?

    /// A row.
    package init(
        generation: Int,
        state: String,
        attempts: Int,
        dueAt: Int64?,
        lastError: String?,
        completedAt: Int64?,
        retrievedAt: Int64?
    ) {
        self.generation = generation
        self.state = state
        self.attempts = attempts
        self.dueAt = dueAt
        self.lastError = lastError
        self.completedAt = completedAt
        self.retrievedAt = retrievedAt
    }

    /// The job as `status` shows it; an unknown state is refused.
    package func summary() throws -> AnalyticsJobSummary {
        guard let jobState = AnalyticsJobState(rawValue: state) else {
            throw StoreError(.corrupt, subject: "analytics_jobs.state", detail: "unknown state '\(state)'")
        }
        let retrieved = jobState == .complete ? retrievedAt ?? completedAt : nil
        return AnalyticsJobSummary(
            generation: generation,
            state: jobState,
            attempts: attempts,
            dueAt: dueAt.map(Date.init(storageMillis:)),
            retrievedAt: retrieved.map(Date.init(storageMillis:)),
            lastError: lastError
        )
    }
}
