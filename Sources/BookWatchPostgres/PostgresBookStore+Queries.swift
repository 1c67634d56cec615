import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import PostgresNIO

extension PostgresBookStore {
    // MARK: reading

    public func book(_ uuid: BookUUID) async throws -> BookRecord? {
        try await records("SELECT * FROM books WHERE uuid = \(uuid.rawValue) AND untracked_at IS NULL").first
    }

    public func books(state: BookPhase?, limit: Int?) async throws -> [BookRecord] {
        let limit = max(0, limit ?? Int(Int32.max))
        if let state {
            return try await records(
                "SELECT * FROM books WHERE state = \(state.rawValue) AND untracked_at IS NULL ORDER BY uuid LIMIT \(limit)"
            )
        }
        return try await records("SELECT * FROM books WHERE untracked_at IS NULL ORDER BY uuid LIMIT \(limit)")
    }

    /// Book rows into records: their documents and newest jobs in two more queries.
    private func records(_ query: PostgresQuery) async throws -> [BookRecord] {
        try await connection { c in
            let books = try await Self.rows(c, query, self.logger).map { try StoredBook(row: $0) }
            guard !books.isEmpty else { return [] }
            let keys = books.map(\.uuid)
            let documents = try await Self.documents(c, of: keys, self.logger)
            var jobs: [String: StoredJob] = [:]
            for row in try await Self.rows(
                c,
                """
                SELECT DISTINCT ON (j.book_uuid) j.*, (SELECT MAX(r.retrieved_at) FROM analytics_results r
                    WHERE r.book_uuid = j.book_uuid AND r.generation = j.generation) AS retrieved_at
                FROM analytics_jobs j WHERE j.book_uuid = ANY(\(keys)) ORDER BY j.book_uuid, j.generation DESC
                """,
                self.logger
            ) {
                jobs[try row.value("book_uuid")] = StoredJob(
                    generation: try row.value("generation"),
                    state: try row.value("state"),
                    attempts: try row.value("attempts"),
                    dueAt: try row.value("due_at"),
                    lastError: try row.value("last_error"),
                    completedAt: try row.value("completed_at"),
                    retrievedAt: try row.value("retrieved_at")
                )
            }
            return try books.map { try $0.record(documents: documents[$0.uuid] ?? [], job: jobs[$0.uuid]) }
        }
    }

    public func totals() async throws -> [BookPhase: Int] {
        try await connection { c in try await Self.totals(c, self.logger) }
    }

    static func totals(_ c: PostgresConnection, _ logger: Logger) async throws -> [BookPhase: Int] {
        try bookTotals(
            try await rows(c, "SELECT state, COUNT(*) AS n FROM books WHERE untracked_at IS NULL GROUP BY state", logger).map {
                (try $0.value("state"), try $0.value("n"))
            }
        )
    }

    public func gauges(overdueBefore: Date) async throws -> StoreGauges {
        try await connection { c in
            var gauges = StoreGauges()
            gauges.books = try await Self.totals(c, self.logger)
            for row in try await Self.rows(
                c,
                "SELECT d.status, COUNT(*) AS n FROM documents d JOIN books b ON b.uuid = d.book_uuid WHERE b.untracked_at IS NULL GROUP BY d.status",
                self.logger
            ) {
                gauges.addDocuments(status: try row.value("status"), count: try row.value("n"))
            }
            gauges.inboxPending = try await Self.count(c, "SELECT COUNT(*) AS n FROM webhook_inbox WHERE processed_at IS NULL", self.logger)
            gauges.pollsOverdue = try await Self.count(
                c,
                "SELECT COUNT(*) AS n FROM books WHERE next_poll_at IS NOT NULL AND next_poll_at < \(overdueBefore.storageMillis)",
                self.logger
            )
            return gauges
        }
    }

    static func count(_ c: PostgresConnection, _ query: PostgresQuery, _ logger: Logger) async throws -> Int {
        try await rows(c, query, logger).first?.value("n", as: Int.self) ?? 0
    }

    /// The column `v` of a one-row query (nil when the row or the value is missing).
    func scalar(_ query: PostgresQuery, as type: Int64.Type) async throws -> Int64? {
        try await connection { c in try await Self.rows(c, query, self.logger).first?.value("v", as: Int64?.self) }
    }

    func scalar(_ query: PostgresQuery, as type: String.Type) async throws -> String? {
        try await connection { c in try await Self.rows(c, query, self.logger).first?.value("v", as: String?.self) }
    }
}

extension PostgresBookStore {
    public func prune(before: Date, limit: Int) async throws -> PruneCounts {
        let t = before.storageMillis
        return try await transaction { c in
            var counts = PruneCounts()
            counts.deliveries = try await Self.rows(
                c,
                """
                DELETE FROM webhook_inbox WHERE id IN (
                    SELECT id FROM webhook_inbox WHERE processed_at IS NOT NULL AND processed_at < \(t) ORDER BY processed_at LIMIT \(limit))
                RETURNING id
                """,
                self.logger
            ).count
            counts.notifications = try await Self.rows(
                c,
                """
                DELETE FROM notifications WHERE (book_uuid, generation) IN (
                    SELECT book_uuid, generation FROM notifications WHERE delivered_at IS NOT NULL AND delivered_at < \(t) LIMIT \(limit))
                RETURNING generation
                """,
                self.logger
            ).count
            counts.jobs = try await Self.rows(
                c,
                """
                DELETE FROM analytics_jobs WHERE id IN (
                    SELECT j.id FROM analytics_jobs j WHERE j.state IN ('complete', 'superseded') AND j.completed_at < \(t)
                    AND j.generation < (SELECT MAX(k.generation) FROM analytics_jobs k WHERE k.book_uuid = j.book_uuid) LIMIT \(limit))
                RETURNING id
                """,
                self.logger
            ).count
            return counts
        }
    }
}

extension PostgresBookStore {
    public func sharedState(_ key: String) async throws -> String? {
        try await scalar("SELECT value AS v FROM deployment_state WHERE key = \(key)", as: String.self)
    }

    @discardableResult
    public func updateSharedState(_ key: String, at now: Date, _ transform: @escaping @Sendable (String?) -> String) async throws -> String {
        try await transaction { c in
            // The row is created first so that concurrent replicas serialise on its lock.
            try await c.query(
                """
                INSERT INTO deployment_state (key, value, updated_at) VALUES (\(key), '', \(now.storageMillis))
                ON CONFLICT (key) DO NOTHING
                """,
                logger: self.logger
            )
            let current = try await Self.rows(c, "SELECT value FROM deployment_state WHERE key = \(key) FOR UPDATE", self.logger)
                .first?.value("value", as: String.self)
            let next = transform(current.flatMap { $0.isEmpty ? nil : $0 })
            try await c.query(
                "UPDATE deployment_state SET value = \(next), updated_at = \(now.storageMillis) WHERE key = \(key)",
                logger: self.logger
            )
            return next
        }
    }
}
