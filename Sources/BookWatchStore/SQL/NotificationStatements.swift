import BookWatchCore
import Foundation

/// `NotificationStore` for both stores.
extension SQLStatementStore {
    /// `NotificationStore.pendingNotifications` for both stores.
    public func pendingNotifications(limit: Int) async throws -> [PendingNotification] {
        try await perform(
            StoreOperation(
                .read,
                SQLStep(
                    "SELECT book_uuid, generation, attempts FROM notifications WHERE delivered_at IS NULL ORDER BY created_at LIMIT \(limit)",
                    reads: true
                )
            ) { rows in try rows.compactMap(PendingNotification.init(row:)) }
        )
    }

    /// `NotificationStore.claimNotification` for both stores.
    public func claimNotification(owner: String, now: Date, lease: TimeInterval) async throws -> PendingNotification? {
        let t = now.storageMillis
        return try await perform(
            StoreOperation(
                .statement,
                SQLStep(
                    """
                    UPDATE notifications SET claimed_by = \(owner), claim_expires_at = \(now.addingTimeInterval(lease).storageMillis)
                    WHERE (book_uuid, generation) = (
                        SELECT book_uuid, generation FROM notifications WHERE delivered_at IS NULL
                            AND (claimed_by IS NULL OR claim_expires_at < \(t)) AND (not_before IS NULL OR not_before <= \(t))
                        ORDER BY created_at LIMIT 1\(.skipLocked))
                    RETURNING book_uuid, generation, attempts
                    """,
                    reads: true
                )
            ) { rows in try rows.first.flatMap(PendingNotification.init(row:)) }
        )
    }

    /// `NotificationStore.recordNotification` for both stores.
    public func recordNotification(_ notification: PendingNotification, at: Date, error: String?, retryAt: Date?) async throws {
        let delivered: Int64? = error == nil ? at.storageMillis : nil
        try await perform(
            StoreOperation(
                .statement,
                writes: [
                    SQLStep(
                        """
                        UPDATE notifications SET attempts = attempts + 1, last_error = \(error), delivered_at = \(delivered),
                            claimed_by = NULL, claim_expires_at = NULL, not_before = \(retryAt?.storageMillis)
                        WHERE book_uuid = \(notification.bookUUID.rawValue) AND generation = \(notification.generation)
                        """
                    )
                ]
            )
        )
    }
}

extension PendingNotification {
    /// A `notifications` row (`book_uuid, generation, attempts`); nil for a uuid that does not parse.
    package init?(row: any SQLRow) throws {
        guard let uuid = BookUUID(try row.string("book_uuid")) else { return nil }
        self.init(bookUUID: uuid, generation: try row.int("generation"), attempts: try row.int("attempts"))
    }
}
