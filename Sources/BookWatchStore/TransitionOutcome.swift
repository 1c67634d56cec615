import BookWatchCore
import Foundation

/// What a committed transition came to.
public struct TransitionOutcome: Sendable {
    /// The machine after the input (before an untrack deleted it).
    public var machine: BookMachine
    /// What the machine decided.
    public var actions: [BookAction]
    /// True when the Book was created by this transition.
    public var created: Bool
    /// The next poll as stored (nil: none scheduled).
    public var nextPollAt: Date?

    /// What a transition came to.
    package init(machine: BookMachine, actions: [BookAction], created: Bool, nextPollAt: Date?) {
        self.machine = machine
        self.actions = actions
        self.created = created
        self.nextPollAt = nextPollAt
    }
}
