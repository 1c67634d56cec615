import struct Foundation.Date

/// The facts of a status answer its transition needs (`BookInput.snapshot`, `.pollRefused`).
public struct PollAnswer: Hashable, Sendable {
    /// When the status request was sent: an answer older than one already applied is dropped, so
    /// a replica whose answer came earlier but committed later cannot roll a Book back (which
    /// would look like a reopen and open a generation that never was).
    public var takenAt: Date?
    /// The claim of the poll that asked (`DuePoll.claimedAt`): the answer ends it, and an urgent
    /// poll requested after the claim stays due (the answer is to an older question).
    public var claim: Date?
    /// The Book's name as the answer gives it (kept beside the Book for `status`).
    public var bookName: String?

    /// The facts of one answer.
    public init(takenAt: Date? = nil, claim: Date? = nil, bookName: String? = nil) {
        self.takenAt = takenAt
        self.claim = claim
        self.bookName = bookName
    }
}
