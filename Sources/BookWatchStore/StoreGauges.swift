import BookWatchCore
import Foundation

/// What the metrics gauges show of the database, read in one snapshot at scrape time (documents
/// are counted apart: `BookRegistry.documentCounts`, refreshed in the background).
public struct StoreGauges: Sendable, Equatable {
    /// Tracked Books by state.
    public var books: [BookPhase: Int] = [:]
    /// Deliveries stored and not yet processed.
    public var inboxPending = 0
    /// Polls later than the overdue threshold asked for.
    public var pollsOverdue = 0

    /// All zero.
    public init() {}
}

/// The Books the polls are for, as the budget's intervals count them (`BookRegistry.polledCounts`).
public struct PolledBooks: Sendable, Equatable {
    /// Tracked Books tracking or processing.
    public var processing: Int
    /// Tracked finished Books with a retention poll pending.
    public var finished: Int

    /// Counts read together.
    public init(processing: Int, finished: Int) {
        self.processing = processing
        self.finished = finished
    }
}
