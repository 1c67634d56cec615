import BookWatchCore
import Foundation

/// `InboxStore` (and the health probe) for both stores.
extension SQLStatementStore {
    /// `InboxStore.appendToInbox` for both stores. A batch of one.
    public func appendToInbox(_ delivery: InboxDelivery) async throws -> InboxAppendOutcome {
        try await appendToInbox(batch: [delivery])[0]
    }

    /// One transaction for the batch (group commit); each row's outcome from its own insert.
    public func appendToInbox(batch: [InboxDelivery]) async throws -> [InboxAppendOutcome] {
        guard !batch.isEmpty else { return [] }
        return try await perform(StoreOperation(.transaction, Self.append(batch[...], outcomes: [])))
    }

    private static func append(_ rest: ArraySlice<InboxDelivery>, outcomes: [InboxAppendOutcome]) -> StoreOperation<[InboxAppendOutcome]>.Next {
        guard let d = rest.first else { return .done(outcomes) }
        let insert = SQLStep(
            """
            INSERT INTO webhook_inbox (\(unescaped: InboxDelivery.insertedColumns))
            VALUES (\(d.requestID), \(d.receivedAt.storageMillis), \(d.bookUUID?.rawValue), \(d.bookPK), \(d.event), \(d.body),
                \(d.remoteAddress), \(d.authenticated), \(d.hint?.storedJSON))
            ON CONFLICT (request_id) DO NOTHING RETURNING id
            """,
            reads: true
        )
        return .run(insert) { rows in
            let outcome: InboxAppendOutcome = try rows.first.map { .stored(id: try $0.int64("id")) } ?? .duplicate
            return append(rest.dropFirst(), outcomes: outcomes + [outcome])
        }
    }

    /// `StoreMaintenance.probeWritable` for both stores.
    public func probeWritable(at now: Date) async throws {
        try await perform(
            StoreOperation(
                .statement,
                writes: [
                    SQLStep(
                        """
                        INSERT INTO service_health (id, checked_at) VALUES (1, \(now.storageMillis))
                        ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at
                        """
                    )
                ]
            )
        )
    }

    /// `InboxStore.inboxContains` for both stores.
    public func inboxContains(requestID: String) async throws -> Bool {
        try await perform(StoreOperation(.read, SQLStep("SELECT id FROM webhook_inbox WHERE request_id = \(requestID)", reads: true)) { !$0.isEmpty })
    }

    /// `InboxStore.newestInboxID` for both stores.
    public func newestInboxID() async throws -> Int64 {
        try await perform(
            StoreOperation(.read, SQLStep("SELECT COALESCE(MAX(id), 0) AS newest FROM webhook_inbox", reads: true)) { rows in
                try rows.first?.optionalInt64("newest") ?? 0
            }
        )
    }

    /// `InboxStore.inboxDeliveries` for both stores.
    public func inboxDeliveries(after id: Int64, limit: Int) async throws -> [StoredDelivery] {
        try await perform(
            StoreOperation(.read, SQLStep("SELECT * FROM webhook_inbox WHERE id > \(id) ORDER BY id LIMIT \(limit)", reads: true)) { rows in
                try rows.map(StoredDelivery.init(row:))
            }
        )
    }

    /// `InboxStore.claimInbox` for both stores.
    public func claimInbox(owner: String, now: Date, limit: Int, lease: TimeInterval) async throws -> [StoredDelivery] {
        let t = now.storageMillis
        return try await perform(
            StoreOperation(
                .statement,
                SQLStep(
                    """
                    UPDATE webhook_inbox SET claimed_by = \(owner), claim_expires_at = \(now.addingTimeInterval(lease).storageMillis)
                    WHERE id IN (SELECT id FROM webhook_inbox WHERE processed_at IS NULL
                                 AND (claimed_by IS NULL OR claim_expires_at < \(t)) AND (not_before IS NULL OR not_before <= \(t))
                                 ORDER BY id LIMIT \(limit)\(.skipLocked))
                    RETURNING *
                    """,
                    reads: true
                )
            ) { rows in try rows.map(StoredDelivery.init(row:)).sorted { $0.id < $1.id } }
        )
    }

    /// `InboxStore.markProcessed` for both stores.
    @discardableResult
    public func markProcessed(_ id: Int64, at: Date, outcome: InboxOutcome) async throws -> Bool {
        try await !mark([InboxMark(id: id, outcome: outcome)], fence: "", at: at).isEmpty
    }

    /// `InboxStore.markProcessed(batch:owner:at:)` for both stores: one transaction, a statement
    /// per row, each fenced by the claim: only while `owner` still holds it (a row deferred or
    /// released since has no holder, and a retry will decide it again).
    public func markProcessed(batch: [InboxMark], owner: String, at: Date) async throws -> Set<Int64> {
        try await mark(batch, fence: "AND claimed_by = \(owner)", at: at)
    }

    private func mark(_ batch: [InboxMark], fence: SQLQuery, at: Date) async throws -> Set<Int64> {
        guard !batch.isEmpty else { return [] }
        return try await perform(StoreOperation(.transaction, Self.mark(batch[...], fence: fence, at: at.storageMillis, marked: [])))
    }

    private static func mark(_ rest: ArraySlice<InboxMark>, fence: SQLQuery, at: Int64, marked: Set<Int64>) -> StoreOperation<Set<Int64>>.Next {
        guard let mark = rest.first else { return .done(marked) }
        let update = SQLStep(
            """
            UPDATE webhook_inbox SET processed_at = \(at), outcome = \(mark.outcome.stored), claimed_by = NULL
            WHERE id = \(mark.id) AND processed_at IS NULL \(fence) RETURNING id
            """,
            reads: true
        )
        return .run(update) { rows in
            Self.mark(rest.dropFirst(), fence: fence, at: at, marked: rows.isEmpty ? marked : marked.union([mark.id]))
        }
    }

    /// `InboxStore.deferInbox` for both stores.
    public func deferInbox(_ id: Int64, owner: String, until: Date) async throws {
        try await perform(
            StoreOperation(
                .statement,
                writes: [
                    SQLStep(
                        """
                        UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL, attempts = attempts + 1,
                            not_before = \(until.storageMillis)
                        WHERE id = \(id) AND processed_at IS NULL AND claimed_by = \(owner)
                        """
                    )
                ]
            )
        )
    }

    /// `InboxStore.releaseInbox` for both stores.
    public func releaseInbox(_ ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await perform(
            StoreOperation(
                .statement,
                writes: [
                    SQLStep(
                        "UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL WHERE id IN \(set: ids) AND processed_at IS NULL"
                    )
                ]
            )
        )
    }
}

extension InboxDelivery {
    /// The columns an inbox insert writes, in the order of `insertedValues`.
    package static let insertedColumns = "request_id, received_at, book_uuid, book_pk, event, body, remote_address, authenticated, hint"

    /// This delivery's values for `insertedColumns` (SQLite's group commit binds them directly).
    package var insertedValues: [SQLValue] {
        [
            requestID.sqlValue, receivedAt.storageMillis.sqlValue, bookUUID?.rawValue.sqlValue ?? .null, bookPK.sqlValue, event.sqlValue,
            body.sqlValue, remoteAddress.sqlValue, authenticated.sqlValue, hint?.storedJSON.sqlValue ?? .null,
        ]
    }
}

extension StoredDelivery {
    /// A `webhook_inbox` row.
    package init(row: any SQLRow) throws {
        self.init(
            id: try row.int64("id"),
            delivery: InboxDelivery(
                requestID: try row.optionalString("request_id"),
                receivedAt: Date(storageMillis: try row.int64("received_at")),
                bookUUID: try row.optionalString("book_uuid").flatMap { BookUUID($0) },
                bookPK: try row.optionalInt("book_pk"),
                event: try row.string("event"),
                body: try row.bytes("body"),
                remoteAddress: try row.optionalString("remote_address"),
                authenticated: try row.bool("authenticated"),
                hint: try row.optionalString("hint").flatMap(WebhookHint.init(storedJSON:))
            ),
            attempts: try row.int("attempts")
        )
    }
}
