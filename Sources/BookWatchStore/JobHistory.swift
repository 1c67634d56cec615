import BookWatchCore

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

/// A store that can say how each of a Book's generations ended: the chaos search's liveness
/// check reads it (a generation not retrieved must have been superseded), on either store.
package protocol JobHistoryReading: BookStore {
    /// A Book's analytics jobs, oldest generation first.
    func jobHistory(_ uuid: BookUUID) async throws -> [JobHistoryRow]
}
