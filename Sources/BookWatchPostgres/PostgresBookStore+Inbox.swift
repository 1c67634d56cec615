import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import PostgresNIO

extension PostgresBookStore {
    // MARK: inbox and health

    public func appendToInbox(_ delivery: InboxDelivery) async throws -> InboxAppendOutcome {
        try await appendToInbox(batch: [delivery])[0]
    }

    public func appendToInbox(batch: [InboxDelivery]) async throws -> [InboxAppendOutcome] {
        guard !batch.isEmpty else { return [] }
        return try await transaction { c in
            var outcomes: [InboxAppendOutcome] = []
            for d in batch {
                let inserted = try await Self.rows(
                    c,
                    """
                    INSERT INTO webhook_inbox (request_id, received_at, book_uuid, book_pk, event, body, remote_address, authenticated)
                    VALUES (\(d.requestID), \(d.receivedAt.storageMillis), \(d.bookUUID?.rawValue), \(d.bookPK), \(d.event),
                        \(Data(d.body)), \(d.remoteAddress), \(d.authenticated))
                    ON CONFLICT (request_id) DO NOTHING RETURNING id
                    """,
                    self.logger
                )
                outcomes.append(try inserted.first.map { .stored(id: try $0.value("id")) } ?? .duplicate)
            }
            return outcomes
        }
    }

    public func probeWritable(at now: Date) async throws {
        _ = try await connection { c in
            try await c.query(
                """
                INSERT INTO service_health (id, checked_at) VALUES (1, \(now.storageMillis))
                ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at
                """,
                logger: self.logger
            )
        }
    }

    public func claimInbox(owner: String, now: Date, limit: Int, lease: TimeInterval) async throws -> [StoredDelivery] {
        try await connection { c in
            try await Self.rows(
                c,
                """
                UPDATE webhook_inbox SET claimed_by = \(owner), claim_expires_at = \(now.addingTimeInterval(lease).storageMillis)
                WHERE id IN (SELECT id FROM webhook_inbox WHERE processed_at IS NULL
                             AND (claimed_by IS NULL OR claim_expires_at < \(now.storageMillis))
                             AND (not_before IS NULL OR not_before <= \(now.storageMillis))
                             ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING *
                """,
                self.logger
            ).map { row in
                let body: Data = try row.value("body")
                return StoredDelivery(
                    id: try row.value("id"),
                    delivery: InboxDelivery(
                        requestID: try row.value("request_id"),
                        receivedAt: Date(storageMillis: try row.value("received_at")),
                        bookUUID: (try row.value("book_uuid", as: String?.self)).flatMap { BookUUID($0) },
                        bookPK: try row.value("book_pk"),
                        event: try row.value("event"),
                        body: Array(body),
                        remoteAddress: try row.value("remote_address"),
                        authenticated: try row.value("authenticated")
                    ),
                    attempts: Int(try row.value("attempts", as: Int64.self))
                )
            }.sorted { $0.id < $1.id }
        }
    }

    @discardableResult
    public func markProcessed(_ id: Int64, at: Date, outcome: InboxOutcome) async throws -> Bool {
        try await connection { c in
            !(try await Self.rows(
                c,
                """
                UPDATE webhook_inbox SET processed_at = \(at.storageMillis), outcome = \(outcome.stored), claimed_by = NULL
                WHERE id = \(id) AND processed_at IS NULL RETURNING id
                """,
                self.logger
            )).isEmpty
        }
    }

    public func deferInbox(_ id: Int64, owner: String, until: Date) async throws {
        _ = try await connection { c in
            try await c.query(
                """
                UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL, attempts = attempts + 1, not_before = \(until.storageMillis)
                WHERE id = \(id) AND processed_at IS NULL AND claimed_by = \(owner)
                """,
                logger: self.logger
            )
        }
    }

    public func releaseInbox(_ ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        _ = try await connection { c in
            try await c.query(
                """
                UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL WHERE id = ANY(\(ids)) AND processed_at IS NULL
                """,
                logger: self.logger
            )
        }
    }
}
