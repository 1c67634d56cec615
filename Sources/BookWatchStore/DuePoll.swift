import BookWatchCore
import Foundation

/// A Book whose poll is due (and, from `claimDuePolls`, claimed).
public struct DuePoll: Sendable, Equatable {
    /// The Book.
    public var bookUUID: BookUUID
    /// Set for urgent polls (webhook hint, operator, startup); nil for scheduled ones.
    public var reason: PollReason?
    /// When the poll came due.
    public var dueAt: Date
    /// When the poll was claimed: hand it back as the answer's `PollAnswer.claim`.
    public var claimedAt: Date?
    /// Status polls of this Book that failed in a row (the backoff of the next one).
    public var failures: Int

    /// A due poll.
    public init(bookUUID: BookUUID, reason: PollReason?, dueAt: Date, claimedAt: Date? = nil, failures: Int = 0) {
        self.failures = failures
        self.bookUUID = bookUUID
        self.reason = reason
        self.dueAt = dueAt
        self.claimedAt = claimedAt
    }
}
