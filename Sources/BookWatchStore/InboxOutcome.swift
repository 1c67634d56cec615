/// One inbox row to mark processed, and how it ended (`InboxStore.markProcessed(batch:at:)`).
public struct InboxMark: Sendable, Equatable {
    /// The row.
    public var id: Int64
    /// How it ended.
    public var outcome: InboxOutcome

    /// The row and its outcome.
    public init(id: Int64, outcome: InboxOutcome) {
        self.id = id
        self.outcome = outcome
    }
}

/// How an inbox delivery ended, as `webhook_inbox.outcome` records it (`stored` is the text).
public enum InboxOutcome: Sendable, Equatable, CustomStringConvertible {
    /// Its hint was applied; written in the transition's own transaction.
    case applied
    /// Nothing to apply it to: the Book is not tracked and auto-tracking is off (or the
    /// transition was refused).
    case ignored
    /// About a Book the operator untracked: stored and counted, never applied.
    case untracked
    /// The body no longer decodes (it did when it was admitted: a newer or older decoder).
    case undecodable
    /// No Book could be found for it; `detail` says why (a permanent API error).
    case unresolved(detail: String?)
    /// Another replica marked it first.
    case processedElsewhere
    /// It could not be applied after this many attempts and is given up (a poison row).
    case gaveUp(attempts: Int)

    /// A poison row given up on: marked, but not counted as processed.
    public var isGiveUp: Bool {
        if case .gaveUp = self { return true }
        return false
    }

    /// The text stored in `webhook_inbox.outcome`.
    public var stored: String {
        switch self {
        case .applied: "applied"
        case .ignored: "ignored"
        case .untracked: "ignored: untracked"
        case .undecodable: "undecodable"
        case .unresolved(let detail): detail.map { "unresolved: \($0)" } ?? "unresolved"
        case .processedElsewhere: "duplicate: processed elsewhere"
        case .gaveUp(let attempts): "gave up after \(attempts) attempts"
        }
    }

    /// The outcome as stored (`webhook_inbox.outcome`).
    public var description: String { stored }
}
