import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import PostgresNIO

extension PostgresBookStore {
    /// The documents of several Books, in position order, by Book.
    static func documents(_ c: PostgresConnection, of keys: [String], _ logger: Logger) async throws -> [String: [StoredDocument]] {
        var documents: [String: [StoredDocument]] = [:]
        for row in try await run(TransitionDriver.readDocuments(keys), on: c, logger) {
            documents[try row.string("book_uuid"), default: []].append(try StoredDocument(row: row))
        }
        return documents
    }
}
