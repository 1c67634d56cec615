import struct Foundation.Date

/// A Document as the machine knows it: the last snapshot's status plus any webhook hint since.
public struct TrackedDocument: Hashable, Sendable {
    /// Which document (pk, uuid or both).
    public var ref: DocumentRef
    /// The status in the last snapshot; nil when only a webhook has mentioned the document.
    public var status: DocumentStatus?
    /// What webhooks since the last snapshot implied; cleared by every snapshot (the snapshot wins).
    public var hint: DocumentProgress?
    /// Whether the document belonged to the Book when its current generation finished.
    public var covered: Bool
    /// Why Ocrolus rejected the document, when it did.
    public var rejectionReason: String?

    /// A document with its last known status.
    public init(
        ref: DocumentRef,
        status: DocumentStatus?,
        hint: DocumentProgress? = nil,
        covered: Bool = false,
        rejectionReason: String? = nil
    ) {
        self.ref = ref
        self.status = status
        self.hint = hint
        self.covered = covered
        self.rejectionReason = rejectionReason
    }

    /// The best current guess: the hint when there is one, else the snapshot's status.
    public var effectiveProgress: DocumentProgress {
        hint ?? status?.progress ?? .inProgress
    }

    /// Known from a snapshot (hint-only documents are not counted as part of the Book yet).
    public var isConfirmed: Bool { status != nil }
}
