import struct Foundation.Date

/// Where a webhook hint comes from (`BookInput.webhook`).
public struct HintDelivery: Hashable, Sendable {
    /// The inbox row, marked processed in the same transaction; when it already is, the
    /// transition throws a duplicate error and changes nothing.
    public var inboxRow: Int64?
    /// A hint about a Book with no row tracks it first (auto-track), in the same transaction; a
    /// tombstone (an untracked Book) is never tracked this way.
    public var trackUnknown: Bool

    /// Where one hint comes from.
    public init(inboxRow: Int64? = nil, trackUnknown: Bool = false) {
        self.inboxRow = inboxRow
        self.trackUnknown = trackUnknown
    }
}
