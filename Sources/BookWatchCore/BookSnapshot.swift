/// One Document as a status response lists it.
public struct DocumentSnapshot: Hashable, Sendable {
    /// Which document (pk, uuid or both).
    public var ref: DocumentRef
    /// Its status at the moment of the answer.
    public var status: DocumentStatus
    /// Why Ocrolus rejected it, when it did (`rejection_reason`).
    public var rejectionReason: String?

    /// A document as one status answer lists it.
    public init(ref: DocumentRef, status: DocumentStatus, rejectionReason: String? = nil) {
        self.ref = ref
        self.status = status
        self.rejectionReason = rejectionReason
    }
}

/// The authoritative view of a Book: what `GET /v1/book/status` answered at one moment.
///
/// `documents` holds both `docs[]` and `mixed_docs[]`. The finished rule is the one of
/// ocrolus-api.md: the book status says `VERIFIED` (or `BOOK_COMPLETE`) **and** every document
/// is finished; an inconsistent snapshot (`VERIFIED` with a document still `VERIFYING`) is not
/// finished.
public enum BookSnapshot: Hashable, Sendable {
    /// The Book exists; its status and documents.
    case present(pk: Int?, status: BookStatus, documents: [DocumentSnapshot])
    /// The Book is gone: `book_status: DELETED`, or error code 1401 under any HTTP status.
    case gone

    /// True when the Book is `VERIFIED` (or `BOOK_COMPLETE`) and every document listed has finished.
    public var isFinished: Bool {
        switch self {
        case .gone:
            false
        case .present(_, let status, let documents):
            status == .verified && documents.allSatisfy(\.status.isFinished)
        }
    }

    /// `.gone` for a present snapshot whose status is `DELETED`, else itself.
    public var normalised: BookSnapshot {
        if case .present(_, .deleted, _) = self { return .gone }
        return self
    }
}

extension BookSnapshot {
    /// Statuses in this snapshot that this build does not recognise (book and documents).
    public var unknownStatusCount: Int {
        guard case .present(_, let status, let documents) = self else { return 0 }
        var count = 0
        if case .unknown = status { count += 1 }
        return count + documents.filter(\.status.isUnknown).count
    }
}
