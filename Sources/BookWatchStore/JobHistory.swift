import BookWatchCore

/// One analytics job as `jobHistory` reads it.
package struct JobHistoryRow: Sendable, Equatable {
    package var generation: Int
    package var state: String
    package var lastError: String?

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
