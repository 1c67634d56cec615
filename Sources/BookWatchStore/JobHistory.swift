import BookWatchCore
import Foundation

/// One analytics job as `jobHistory` reads it.
package struct JobHistoryRow: Sendable, Equatable {
    /// The generation.
    package var generation: Int
    /// How its job ended (or where it is).
    package var state: String
    /// Its last error, if any.
    package var lastError: String?

    /// One job.
    package init(generation: Int, state: String, lastError: String?) {
        self.generation = generation
        self.state = state
        self.lastError = lastError
    }
}

/// What the chaos search's safety check reads of a tracked Book: its phase and generation, its next poll, and its
/// newest job's generation, state and due time (what `books(state:limit:)` would say of them,
/// without the documents and labels it also reads).
package struct WatchedBook: Sendable, Equatable {
    /// The Book.
    package var uuid: BookUUID
    /// Its machine's phase.
    package var phase: BookPhase
    /// The Book's generation (bookwatch's count of its finishes).
    package var generation: Int
    /// When it is next polled, if it is.
    package var nextPollAt: Date?
    /// Its newest analytics job, if it has one.
    package var job: Job?

    /// The newest job.
    package struct Job: Sendable, Equatable {
        /// The generation it retrieves.
        package var generation: Int
        /// Where it is.
        package var state: AnalyticsJobState
        /// When it is next due, while pending.
        package var dueAt: Date?
    }
}

/// A store that can say how each of a Book's generations ended: the chaos search's liveness
/// check reads it (a generation not retrieved must have been superseded), on either store.
package protocol JobHistoryReading: BookStore {
    /// A Book's analytics jobs, oldest generation first.
    func jobHistory(_ uuid: BookUUID) async throws -> [JobHistoryRow]

    /// Every tracked Book as the safety check reads it, ordered by uuid: one statement (the
    /// check runs after every step that changed a row).
    func watchedBooks() async throws -> [WatchedBook]
}
