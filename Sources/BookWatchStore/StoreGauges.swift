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
