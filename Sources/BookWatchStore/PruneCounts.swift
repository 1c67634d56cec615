import BookWatchCore
import Foundation

/// What one `prune` deleted.
public struct PruneCounts: Sendable, Equatable {
    /// Processed deliveries deleted.
    public var deliveries = 0
    /// Delivered notifications deleted.
    public var notifications = 0
    /// Finished jobs of earlier generations deleted.
    public var jobs = 0

    /// Counts of one prune.
    public init(deliveries: Int = 0, notifications: Int = 0, jobs: Int = 0) {
        self.deliveries = deliveries
        self.notifications = notifications
        self.jobs = jobs
    }

    /// Rows deleted in all.
    public var total: Int { deliveries + notifications + jobs }
}
