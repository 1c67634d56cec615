import BookWatchCore
import Foundation
import GRDB

extension SQLiteBookStore {
    public func appendToInbox(_ delivery: InboxDelivery) async throws -> InboxAppendOutcome {
        try await appendToInbox(batch: [delivery])[0]
    }

    public func appendToInbox(batch: [InboxDelivery]) async throws -> [InboxAppendOutcome] {
        guard !batch.isEmpty else { return [] }
        return try await write { db in
            let insert = try db.cachedStatement(sql: """
                INSERT INTO webhook_inbox (request_id, received_at, book_uuid, book_pk, event, body, remote_address, authenticated)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(request_id) DO NOTHING
                """)
            return try batch.map { delivery in
                try insert.execute(arguments: [
                    delivery.requestID, delivery.receivedAt.storageMillis, delivery.bookUUID?.rawValue,
                    delivery.bookPK, delivery.event, Data(delivery.body), delivery.remoteAddress, delivery.authenticated,
                ])
                return db.changesCount == 0 ? .duplicate : .stored(id: db.lastInsertedRowID)
            }
        }
    }

    public func probeWritable(at now: Date) async throws {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO service_health (id, checked_at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET checked_at = excluded.checked_at",
                arguments: [now.storageMillis])
        }
    }

    /// How many deliveries are stored in all (tests and metrics).
    public func inboxCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhook_inbox") ?? 0 }
    }

    /// Deliveries not yet processed, oldest first.
    public func pendingInbox(limit: Int) async throws -> [StoredDelivery] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM webhook_inbox WHERE processed_at IS NULL ORDER BY id LIMIT ?",
                arguments: [limit]
            ).map(Self.storedDelivery)
        }
    }

    static func storedDelivery(_ row: Row) -> StoredDelivery {
        let bytes: Data = row["body"]
        return StoredDelivery(
            id: row["id"],
            delivery: InboxDelivery(
                requestID: row["request_id"],
                receivedAt: Date(storageMillis: row["received_at"]),
                bookUUID: (row["book_uuid"] as String?).flatMap { BookUUID($0) },
                bookPK: row["book_pk"], event: row["event"], body: Array(bytes),
                remoteAddress: row["remote_address"], authenticated: row["authenticated"]),
            attempts: row["attempts"])
    }
}

public struct StoredDelivery: Sendable, Equatable {
    public var id: Int64
    public var delivery: InboxDelivery
    /// Times it could not be applied yet (`BookStore.deferInbox`).
    public var attempts: Int

    public init(id: Int64, delivery: InboxDelivery, attempts: Int = 0) {
        self.id = id
        self.delivery = delivery
        self.attempts = attempts
    }
}
