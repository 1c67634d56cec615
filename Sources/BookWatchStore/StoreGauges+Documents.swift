import BookWatchCore
import Foundation

extension StoreGauges {
    /// Adds one `GROUP BY status` row of the documents table to `documents` (by progress).
    package static func addDocuments(status: String?, count: Int, to documents: inout [DocumentProgress: Int]) {
        let progress = status.map { DocumentStatus($0).progress } ?? .inProgress
        documents[progress, default: 0] += count
    }
}
