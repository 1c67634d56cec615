/// An error from a store, with the context an operator needs (which path, which row).
///
/// A struct wrapping a private enum, so that cases can be added without breaking callers;
/// ask `kind` to branch on it.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    /// What went wrong (branch on this, not on the text).
    public enum Kind: String, Sendable {
        /// A UNIQUE constraint refused the row (an answer, not a crash).
        case duplicate
        /// The directory of the database does not exist.
        case missingDirectory
        /// The database or its directory cannot be written.
        case readOnly
        /// The database cannot be opened or used (corrupt, locked past the timeout, disk full...).
        case unavailable
        /// The row asked for does not exist.
        case notFound
        /// A stored value cannot be read back (a bug or a hand-edited database).
        case corrupt
        /// The claim (owner and lease token) a write was made under is no longer held: another
        /// worker took the work over, or it was superseded. The write was rolled back.
        case lostClaim
        /// The database location is malformed (a `postgres://` URL without a user, a bad sslmode...).
        case invalidLocation
        /// The database is not in a state the operation may run on (a migration into a
        /// database that already holds Books, a column the destination lacks).
        case refused
    }

    /// What went wrong.
    public let kind: Kind
    /// What the error is about: a path, a book uuid, a constraint.
    public let subject: String
    /// The database's own words, or what was expected.
    public let detail: String

    /// An error of `kind` about `subject`.
    public init(_ kind: Kind, subject: String, detail: String) {
        self.kind = kind
        self.subject = subject
        self.detail = detail
    }

    /// True for `.duplicate`.
    public var isDuplicate: Bool { kind == .duplicate }
    /// True for `.lostClaim`.
    public var isLostClaim: Bool { kind == .lostClaim }

    /// One line for logs and the CLI, naming the subject.
    public var description: String {
        switch kind {
        case .duplicate: "duplicate \(subject): \(detail)"
        case .missingDirectory: "database directory does not exist: \(subject)"
        case .readOnly: "database is not writable: \(subject) (\(detail))"
        case .unavailable: "database unavailable: \(subject) (\(detail))"
        case .notFound: "not found: \(subject)"
        case .corrupt: "unreadable stored value in \(subject): \(detail)"
        case .lostClaim: "claim no longer held on \(subject): \(detail)"
        case .invalidLocation: "invalid \(subject): \(detail)"
        case .refused: "refused on \(subject): \(detail)"
        }
    }
}
