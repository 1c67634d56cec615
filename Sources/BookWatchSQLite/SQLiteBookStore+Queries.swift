import BookWatchCore
import BookWatchStore
import Foundation
import GRDB

extension SQLiteBookStore {
    public func book(_ uuid: BookUUID) async throws -> BookRecord? {
        try await read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM books WHERE uuid = ? AND untracked_at IS NULL", arguments: [uuid.rawValue])
            else { return nil }
            return try Self.records(db, rows: [row]).first
        }
    }

    public func books(state: BookPhase?, limit: Int?) async throws -> [BookRecord] {
        try await read { db in
            var sql = "SELECT * FROM books WHERE untracked_at IS NULL"
            var arguments: StatementArguments = []
            if let state {
                sql += " AND state = ?"
                arguments += [state.rawValue]
            }
            sql += " ORDER BY uuid"
            if let limit {
                sql += " LIMIT ?"
                arguments += [max(0, limit)]
            }
            return try Self.records(db, rows: Row.fetchAll(db, sql: sql, arguments: arguments))
        }
    }

    public func totals() async throws -> [BookPhase: Int] {
        try await read(Self.totals)
    }

    /// Books by state, riding the `books_state` index.
    static func totals(_ db: Database) throws -> [BookPhase: Int] {
        try bookTotals(
            Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM books WHERE untracked_at IS NULL GROUP BY state").map { ($0["state"], $0["n"]) }
        )
    }

    /// Turns book rows into records, fetching their documents and current jobs in two queries.
    static func records(_ db: Database, rows: [Row]) throws -> [BookRecord] {
        guard !rows.isEmpty else { return [] }
        let keys: [String] = rows.map { $0["uuid"] }
        let placeholders = databaseQuestionMarks(count: keys.count)
        var documents: [String: [Row]] = [:]
        for row in try Row.fetchAll(
            db,
            sql: "SELECT * FROM documents WHERE book_uuid IN (\(placeholders)) ORDER BY book_uuid, position",
            arguments: StatementArguments(keys)
        ) {
            documents[row["book_uuid"], default: []].append(row)
        }
        var jobs: [String: [Row]] = [:]
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT j.*, (SELECT MAX(r.retrieved_at) FROM analytics_results r
                             WHERE r.book_uuid = j.book_uuid AND r.generation = j.generation) AS retrieved_at
                FROM analytics_jobs j WHERE j.book_uuid IN (\(placeholders))
                """,
            arguments: StatementArguments(keys)
        ) {
            jobs[row["book_uuid"], default: []].append(row)
        }
        return try rows.map { row in
            let book = try StoredBook(row: row)
            // The job that matters is the newest one opened (the current or last generation's).
            let job = (jobs[book.uuid] ?? []).max { ($0["generation"] as Int) < ($1["generation"] as Int) }
            return try book.record(
                documents: try (documents[book.uuid] ?? []).map { try StoredDocument(row: $0) },
                job: job.map {
                    StoredJob(
                        generation: $0["generation"],
                        state: $0["state"],
                        attempts: $0["attempts"],
                        dueAt: $0["due_at"],
                        lastError: $0["last_error"],
                        completedAt: $0["completed_at"],
                        retrievedAt: $0["retrieved_at"]
                    )
                }
            )
        }
    }
}

extension SQLiteBookStore {
    /// Counts for the gauges. Each count rides an index (books by state, the due-poll and
    /// pending-inbox partial indexes) except documents, which are grouped by status.
    public func gauges(overdueBefore: Date) async throws -> StoreGauges {
        try await read { db in
            var gauges = StoreGauges()
            gauges.books = try Self.totals(db)
            for row in try Row.fetchAll(
                db,
                sql:
                    "SELECT d.status, COUNT(*) AS n FROM documents d JOIN books b ON b.uuid = d.book_uuid WHERE b.untracked_at IS NULL GROUP BY d.status"
            ) {
                gauges.addDocuments(status: row["status"], count: row["n"])
            }
            gauges.inboxPending = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhook_inbox WHERE processed_at IS NULL") ?? 0
            gauges.pollsOverdue =
                try Int.fetchOne(
                    db,
                    sql: "SELECT COUNT(*) FROM books WHERE next_poll_at IS NOT NULL AND next_poll_at < ?",
                    arguments: [overdueBefore.storageMillis]
                ) ?? 0
            return gauges
        }
    }
}
