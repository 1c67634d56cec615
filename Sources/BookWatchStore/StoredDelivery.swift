import BookWatchCore
import Foundation

/// An inbox row: a delivery with its id and how often it could not be applied yet.
public struct StoredDelivery: Sendable, Equatable {
    /// The row id (`webhook_inbox.id`), in arrival order.
    public var id: Int64
    /// The delivery as received (with the hint admission decoded).
    public var delivery: InboxDelivery
    /// Times it could not be applied yet (`BookStore.deferInbox`).
    public var attempts: Int

    /// An inbox row.
    public init(id: Int64, delivery: InboxDelivery, attempts: Int = 0) {
        self.id = id
        self.delivery = delivery
        self.attempts = attempts
    }
}
