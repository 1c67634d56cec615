import BookWatchCore
import BookWatchStore
import Foundation
import GRDB

extension SQLiteBookStore {
    public func pendingNotifications(limit: Int) async throws -> [PendingNotification] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT book_uuid, generation, attempts FROM notifications WHERE delivered_at IS NULL ORDER BY created_at LIMIT ?",
                arguments: [limit]
            ).compactMap { row in
                BookUUID(row["book_uuid"] as String).map {
                    PendingNotification(bookUUID: $0, generation: row["generation"], attempts: row["attempts"])
                }
            }
        }
    }

    public func claimNotification(owner: String, now: Date, lease: TimeInterval) async throws -> PendingNotification? {
        try await write { db in
            try Row.fetchOne(
                db,
                sql: """
                    UPDATE notifications SET claimed_by = ?, claim_expires_at = ?
                    WHERE rowid = (SELECT rowid FROM notifications WHERE delivered_at IS NULL
                                   AND (claimed_by IS NULL OR claim_expires_at < ?) AND (not_before IS NULL OR not_before <= ?)
                                   ORDER BY created_at LIMIT 1)
                    RETURNING book_uuid, generation, attempts
                    """,
                arguments: [owner, now.addingTimeInterval(lease).storageMillis, now.storageMillis, now.storageMillis]
            ).flatMap { row in
                BookUUID(row["book_uuid"] as String).map {
                    PendingNotification(bookUUID: $0, generation: row["generation"], attempts: row["attempts"])
                }
            }
        }
    }

    /// Records the outcome of one hand-on attempt (nil error: delivered).
    public func recordNotification(_ notification: PendingNotification, at: Date, error: String?, retryAt: Date?) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE notifications SET attempts = attempts + 1, last_error = ?, claimed_by = NULL, claim_expires_at = NULL,
                        delivered_at = CASE WHEN ? IS NULL THEN ? ELSE NULL END, not_before = ?
                    WHERE book_uuid = ? AND generation = ?
                    """,
                arguments: [error, error, at.storageMillis, retryAt?.storageMillis, notification.bookUUID.rawValue, notification.generation]
            )
        }
    }
}
