import BookWatchCore
import Foundation

/// A `documents` row.
package struct StoredDocument: Sendable {
    /// `documents.pk`.
    package var pk: Int?
    /// `documents.uuid`.
    package var uuid: String?
    /// `documents.status`.
    package var status: String?
    /// `documents.hint`.
    package var hint: String?
    /// `documents.covered`.
    package var covered: Bool
    /// `documents.rejection_reason`.
    package var rejectionReason: String?

    /// A row.
    package init(pk: Int?, uuid: String?, status: String?, hint: String?, covered: Bool, rejectionReason: String?) {
        self.pk = pk
        self.uuid = uuid
        self.status = status
        self.hint = hint
        self.covered = covered
        self.rejectionReason = rejectionReason
    }

    /// The row of a tracked document.
    package init(_ document: TrackedDocument) {
        self.init(
            pk: document.ref.pk,
            uuid: document.ref.uuid,
            status: document.status?.rawValue,
            hint: document.hint?.rawValue,
            covered: document.covered,
            rejectionReason: document.rejectionReason
        )
    }

    func tracked(book: String) throws -> TrackedDocument {
        var progress: DocumentProgress?
        if let hint {
            guard let parsed = DocumentProgress(rawValue: hint) else {
                throw StoreError(.corrupt, subject: "documents.hint of \(book)", detail: "'\(hint)'")
            }
            progress = parsed
        }
        return TrackedDocument(
            ref: DocumentRef(pk: pk, uuid: uuid),
            status: status.map(DocumentStatus.init),
            hint: progress,
            covered: covered,
            rejectionReason: rejectionReason
        )
    }
}
