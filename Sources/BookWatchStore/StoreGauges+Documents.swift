import BookWatchCore
import Foundation

extension StoreGauges {
    /// Adds one `GROUP BY status` row of the documents table.
    package mutating func addDocuments(status: String?, count: Int) {
        let progress = status.map { DocumentStatus($0).progress } ?? .inProgress
        documents[progress, default: 0] += count
    }
}
