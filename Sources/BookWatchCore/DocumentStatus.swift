/// Where a Document stands, as far as "is the Book finished?" is concerned.
public enum DocumentProgress: String, Hashable, Sendable, CaseIterable {
    /// Still being processed (includes unknown statuses).
    case inProgress = "in_progress"
    /// Finished with data available (`VERIFICATION_COMPLETE`, `COMPLETED`).
    case succeeded
    /// Finished but unusable (`REJECTED`, `FAILED`).
    case failed
    /// Removed (`DELETED`); finished, and ignored for analytics.
    case removed

    /// True for every outcome but `inProgress`: succeeded, failed and removed documents no longer hold a Book back.
    public var isFinished: Bool { self != .inProgress }
}

/// A Document's status string from Ocrolus, kept verbatim when unknown.
public enum DocumentStatus: Hashable, Sendable, CustomStringConvertible {
    case uploaded, queued, processing, grooming, verifying, classified, deleting
    case verificationComplete, completed
    case rejected, failed
    case deleted
    /// A status string this build does not know; treated as in progress.
    case unknown(String)

    /// Parses a document status as Ocrolus spells it; an unknown one is kept verbatim (and counts as in progress).
    public init(_ raw: String) {
        switch raw.uppercased() {
        case "UPLOADED": self = .uploaded
        case "QUEUED": self = .queued
        case "PROCESSING": self = .processing
        case "GROOMING": self = .grooming
        case "VERIFYING": self = .verifying
        case "CLASSIFIED": self = .classified
        case "DELETING": self = .deleting
        case "VERIFICATION_COMPLETE": self = .verificationComplete
        case "COMPLETED": self = .completed
        case "REJECTED": self = .rejected
        case "FAILED": self = .failed
        case "DELETED": self = .deleted
        default: self = .unknown(raw)
        }
    }

    /// The status as Ocrolus spells it.
    public var rawValue: String {
        switch self {
        case .uploaded: "UPLOADED"
        case .queued: "QUEUED"
        case .processing: "PROCESSING"
        case .grooming: "GROOMING"
        case .verifying: "VERIFYING"
        case .classified: "CLASSIFIED"
        case .deleting: "DELETING"
        case .verificationComplete: "VERIFICATION_COMPLETE"
        case .completed: "COMPLETED"
        case .rejected: "REJECTED"
        case .failed: "FAILED"
        case .deleted: "DELETED"
        case .unknown(let raw): raw
        }
    }

    /// The finished rule of ocrolus-api.md's document table.
    public var progress: DocumentProgress {
        switch self {
        case .uploaded, .queued, .processing, .grooming, .verifying, .classified, .deleting, .unknown:
            .inProgress
        case .verificationComplete, .completed: .succeeded
        case .rejected, .failed: .failed
        case .deleted: .removed
        }
    }

    /// True when the document no longer holds its Book back (`progress` is not in progress).
    public var isFinished: Bool { progress.isFinished }

    /// True for a string this build does not recognise (counted in a metric by the service).
    public var isUnknown: Bool {
        if case .unknown = self { return true }
        return false
    }

    /// The status as Ocrolus spells it.
    public var description: String { rawValue }
}
