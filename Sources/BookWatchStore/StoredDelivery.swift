import BookWatchCore
import Foundation

public struct StoredDelivery: Sendable, Equatable {
    public var id: Int64
    public var delivery: InboxDelivery
    /// Times it could not be applied yet (`BookStore.deferInbox`).
    public var attempts: Int

    public init(id: Int64, delivery: InboxDelivery, attempts: Int = 0) {
        self.id = id
        self.delivery = delivery
        self.attempts = attempts
    }
}
