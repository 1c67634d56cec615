import BookWatchCore
import Foundation

/// An analytics job claimed by a worker, with its lease.
public struct ClaimedJob: Sendable, Equatable {
    /// The Book.
    public var bookUUID: BookUUID
    /// The generation whose analytics the job retrieves.
    public var generation: Int
    /// Real errors so far (5xx, timeouts...): waiting on 425 or on a fresh view is not an attempt.
    public var attempts: Int
    /// When the claim lapses unless renewed (another worker may then take the job).
    public var leaseExpiresAt: Date
    /// When the job was opened: the moment the Book was seen finished.
    public var openedAt: Date
    /// The claim every write for this job is fenced by.
    public var claim: JobClaim
    /// The job was made due by a status answer confirming the finish: it runs on that view.
    public var viewConfirmed: Bool

    /// A claimed job.
    public init(
        bookUUID: BookUUID,
        generation: Int,
        attempts: Int,
        leaseExpiresAt: Date,
        openedAt: Date,
        claim: JobClaim = JobClaim(owner: "", token: 0),
        viewConfirmed: Bool = false
    ) {
        self.claim = claim
        self.viewConfirmed = viewConfirmed
        self.bookUUID = bookUUID
        self.generation = generation
        self.attempts = attempts
        self.leaseExpiresAt = leaseExpiresAt
        self.openedAt = openedAt
    }
}
