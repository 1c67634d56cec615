import BookWatchCore
import Foundation

/// What the metrics gauges show of the database, read in one snapshot at scrape time.
public struct StoreGauges: Sendable, Equatable {
    public var books: [BookPhase: Int] = [:]
    public var documents: [DocumentProgress: Int] = [:]
    public var inboxPending = 0
    public var pollsOverdue = 0

    public init() {}
}
