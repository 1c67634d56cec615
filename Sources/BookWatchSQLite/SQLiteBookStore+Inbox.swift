import BookWatchCore
import BookWatchStore
import Foundation
import GRDB

extension SQLiteBookStore {
    public func appendToInbox(_ delivery: InboxDelivery) async throws -> InboxAppendOutcome {
        try await appendToInbox(batch: [delivery])[0]
    }

    public func appendToInbox(batch: [InboxDelivery]) async throws -> [InboxAppendOutcome] {
        guard !batch.isEmpty else { return [] }
        return try await write { db in
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO webhook_inbox (request_id, received_at, book_uuid, book_pk, event, body, remote_address, authenticated)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(request_id) DO NOTHING
                    """
            )
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
                arguments: [now.storageMillis]
            )
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
                db,
                sql: "SELECT * FROM webhook_inbox WHERE processed_at IS NULL ORDER BY id LIMIT ?",
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
                bookPK: row["book_pk"],
                event: row["event"],
                body: Array(bytes),
                remoteAddress: row["remote_address"],
                authenticated: row["authenticated"]
            ),
            attempts: row["attempts"]
        )
    }
}

extension SQLiteBookStore {
    @discardableResult
    public func markProcessed(_ id: Int64, at: Date, outcome: InboxOutcome) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE webhook_inbox SET processed_at = ?, outcome = ?, claimed_by = NULL WHERE id = ? AND processed_at IS NULL",
                arguments: [at.storageMillis, outcome.stored, id]
            )
            return db.changesCount == 1
        }
    }

    public func claimInbox(owner: String, now: Date, limit: Int, lease: TimeInterval) async throws -> [StoredDelivery] {
        try await write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    UPDATE webhook_inbox SET claimed_by = ?, claim_expires_at = ?
                    WHERE id IN (SELECT id FROM webhook_inbox WHERE processed_at IS NULL
                                 AND (claimed_by IS NULL OR claim_expires_at < ?) AND (not_before IS NULL OR not_before <= ?)
                                 ORDER BY id LIMIT ?)
                    RETURNING *
                    """,
                arguments: [owner, now.addingTimeInterval(lease).storageMillis, now.storageMillis, now.storageMillis, limit]
            )
            return rows.map(Self.storedDelivery).sorted { $0.id < $1.id }
        }
    }

    public func releaseInbox(_ ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await write { db in
            try db.execute(
                sql:
                    "UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL WHERE id IN (\(databaseQuestionMarks(count: ids.count))) AND processed_at IS NULL",
                arguments: StatementArguments(ids)
            )
        }
    }

    public func deferInbox(_ id: Int64, owner: String, until: Date) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL, attempts = attempts + 1, not_before = ?
                    WHERE id = ? AND processed_at IS NULL AND claimed_by = ?
                    """,
                arguments: [until.storageMillis, id, owner]
            )
        }
    }

    /// Deliveries not yet processed.
    public func pendingInboxCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhook_inbox WHERE processed_at IS NULL") ?? 0 }
    }
}
