import struct Foundation.Date

/// The states of a watched Book (the `state` field of `status --json`).
public enum BookPhase: String, Hashable, Sendable, CaseIterable, Comparable {
    /// Tracked, nothing known yet.
    case tracking
    /// Some Document not finished.
    case processing
    /// Every Document finished; an analytics job is open for the current generation.
    case retrieving
    /// Analytics for the current generation are stored.
    case complete
    /// Analytics gave up: book gone, no permission, or attempts exhausted.
    case failed
    /// Ocrolus says the Book is gone.
    case deleted

    /// Phases in the order a Book normally passes them (`ordinal`).
    public static func < (lhs: BookPhase, rhs: BookPhase) -> Bool {
        lhs.ordinal < rhs.ordinal
    }

    /// Lifecycle order, used to sort tables and totals.
    public var ordinal: Int {
        switch self {
        case .tracking: 0
        case .processing: 1
        case .retrieving: 2
        case .complete: 3
        case .failed: 4
        case .deleted: 5
        }
    }
}
