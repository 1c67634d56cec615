import BookWatchCore
import Foundation

/// A retrieval to hand on (`--on-complete`).
public struct PendingNotification: Sendable, Equatable {
    /// The Book.
    public var bookUUID: BookUUID
    /// The generation retrieved.
    public var generation: Int
    /// Hand-on attempts so far.
    public var attempts: Int

    /// A retrieval to hand on.
    package init(bookUUID: BookUUID, generation: Int, attempts: Int) {
        self.bookUUID = bookUUID
        self.generation = generation
        self.attempts = attempts
    }

    /// `book_uuid:generation`: the receiver dedupes on it (delivery is at least once).
    public var idempotencyKey: String { "\(bookUUID):\(generation)" }
}
