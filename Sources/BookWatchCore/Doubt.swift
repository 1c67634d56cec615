import struct Foundation.Date

/// A doubt raised by one status answer that only a second answer may confirm: one odd answer must
/// never delete a Book or reopen a finished generation.
public struct Doubt: Hashable, Sendable {
    /// What the first answer claimed.
    public enum Kind: String, Hashable, Sendable {
        /// Ocrolus said the Book is gone (code 1401 or `DELETED`).
        case gone
        /// A finished Document showed unfinished again, or a covered one was missing, with no new
        /// Document in the answer.
        case reopen
        /// The status call was refused for good (403/2102, a code inside a 200).
        case refused
    }
    /// What the odd answer claimed.
    public var kind: Kind
    /// When the request of the answer that raised it was sent.
    public var since: Date

    /// A doubt raised by an answer asked at `since`.
    public init(kind: Kind, since: Date) {
        self.kind = kind
        self.since = since
    }
}
