import BookWatchCore
import Foundation

/// The reads of `BookRegistry` and the `StoreMaintenance` role, for both stores.
extension SQLStatementStore {
    /// `BookRegistry.book` for both stores.
    public func book(_ uuid: BookUUID) async throws -> BookRecord? {
        try await records("\(unescaped: BookStatements.withLabels) WHERE uuid = \(uuid.rawValue) AND untracked_at IS NULL").first
    }

    /// `BookRegistry.setLabel` for both stores.
    public func setLabel(_ label: String?, of uuid: BookUUID) async throws {
        try await perform(StoreOperation(.statement, BookLabels.setLabel(uuid.rawValue, label)) { _ in () })
    }

    /// `BookRegistry.books` for both stores.
    public func books(state: BookPhase?, label: String?, limit: Int?) async throws -> [BookRecord] {
        let only: SQLQuery = state.map { " AND state = \($0.rawValue)" } ?? ""
        let labelled: SQLQuery = label.map { " AND l.label = \($0)" } ?? ""
        let most: SQLQuery = limit.map { " LIMIT \(max(0, $0))" } ?? ""
        return try await records("\(unescaped: BookStatements.withLabels) WHERE untracked_at IS NULL\(only)\(labelled) ORDER BY uuid\(most)")
    }

    /// Book rows into records: their documents and jobs in two more queries (the newest job of
    /// each Book is the one `status` shows).
    private func records(_ query: SQLQuery) async throws -> [BookRecord] {
        try await perform(
            StoreOperation(
                .read,
                .run(SQLStep(query, reads: true)) { rows in
                    let books = try rows.map { try StoredBook(row: $0) }
                    let labels = try rows.map { (label: try $0.optionalString("book_label"), name: try $0.optionalString("book_name")) }
                    guard !books.isEmpty else { return .done([]) }
                    // Keys in chunks: `status` without a limit may list every Book.
                    let keys = books.map(\.uuid)
                    let chunks = stride(from: 0, to: keys.count, by: SQLQuery.valuesPerList).map {
                        Array(keys[$0..<min($0 + SQLQuery.valuesPerList, keys.count)])
                    }
                    return try StoreOperation.collect(
                        chunks.map(TransitionDriver.readDocuments),
                        { (try $0.string("book_uuid"), try StoredDocument(row: $0)) }
                    ) { documentRows in
                        let documents = Dictionary(grouping: documentRows, by: \.0).mapValues { $0.map(\.1) }
                        return try StoreOperation.collect(
                            chunks.map(BookStatements.jobs(of:)),
                            { (try $0.string("book_uuid"), try StoredJob(row: $0)) }
                        ) {
                            jobRows in
                            var jobs: [String: StoredJob] = [:]
                            for (key, job) in jobRows where job.generation > jobs[key]?.generation ?? Int.min { jobs[key] = job }
                            return .done(
                                try zip(books, labels).map { book, labels in
                                    try book.record(
                                        documents: documents[book.uuid] ?? [],
                                        job: jobs[book.uuid],
                                        label: labels.label,
                                        name: labels.name
                                    )
                                }
                            )
                        }
                    }
                }
            )
        )
    }

    /// `BookRegistry.totals` for both stores.
    public func totals() async throws -> [BookPhase: Int] {
        try await perform(StoreOperation(.read, BookStatements.totals, BookStatements.totals(_:)))
    }

    /// `BookRegistry.polledCounts` for both stores.
    public func polledCounts() async throws -> PolledBooks {
        try await perform(
            StoreOperation(
                .read,
                .run(BookStatements.processing) { rows in
                    let processing = try rows.first?.int("n") ?? 0
                    return .run(BookStatements.finishedPolled) { rows in
                        .done(PolledBooks(processing: processing, finished: try rows.first?.int("n") ?? 0))
                    }
                }
            )
        )
    }

    /// Counts for the gauges read at each scrape, each on an index (tracked Books by state, the
    /// due-poll and pending-inbox partial indexes); documents are counted apart (`documentCounts`).
    public func gauges(overdueBefore: Date) async throws -> StoreGauges {
        let inbox = SQLStep("SELECT COUNT(*) AS n FROM webhook_inbox WHERE processed_at IS NULL", reads: true)
        let overdue = SQLStep(
            "SELECT COUNT(*) AS n FROM books WHERE next_poll_at IS NOT NULL AND next_poll_at < \(overdueBefore.storageMillis)",
            reads: true
        )
        return try await perform(
            StoreOperation(
                .read,
                .run(BookStatements.totals) { totals in
                    var gauges = StoreGauges()
                    gauges.books = try BookStatements.totals(totals)
                    return .run(inbox) { [gauges] rows in
                        var gauges = gauges
                        gauges.inboxPending = try rows.first?.int("n") ?? 0
                        return .run(overdue) { [gauges] rows in
                            var gauges = gauges
                            gauges.pollsOverdue = try rows.first?.int("n") ?? 0
                            return .done(gauges)
                        }
                    }
                }
            )
        )
    }

    /// `BookRegistry.documentCounts` for both stores: the documents of tracked Books grouped by
    /// status (a scan: 1M rows at 100k Books).
    public func documentCounts() async throws -> [DocumentProgress: Int] {
        let documents = SQLStep(
            """
            SELECT d.status, COUNT(*) AS n FROM documents d JOIN books b ON b.uuid = d.book_uuid
            WHERE b.untracked_at IS NULL GROUP BY d.status
            """,
            reads: true
        )
        return try await perform(
            StoreOperation(.read, documents) { rows in
                var documents: [DocumentProgress: Int] = [:]
                for row in rows { StoreGauges.addDocuments(status: try row.optionalString("status"), count: try row.int("n"), to: &documents) }
                return documents
            }
        )
    }

    /// `StoreMaintenance.prune` for both stores. One transaction for the three kinds.
    public func prune(before: Date, limit: Int) async throws -> PruneCounts {
        let t = before.storageMillis
        let deliveries = SQLStep(
            """
            DELETE FROM webhook_inbox WHERE id IN (
                SELECT id FROM webhook_inbox WHERE processed_at IS NOT NULL AND processed_at < \(t) ORDER BY processed_at LIMIT \(limit))
            RETURNING id
            """,
            reads: true
        )
        let notifications = SQLStep(
            """
            DELETE FROM notifications WHERE (book_uuid, generation) IN (
                SELECT book_uuid, generation FROM notifications WHERE delivered_at IS NOT NULL AND delivered_at < \(t) LIMIT \(limit))
            RETURNING generation
            """,
            reads: true
        )
        let jobs = SQLStep(
            """
            DELETE FROM analytics_jobs WHERE id IN (
                SELECT j.id FROM analytics_jobs j WHERE j.state IN ('complete', 'superseded') AND j.completed_at < \(t)
                AND j.generation < (SELECT MAX(k.generation) FROM analytics_jobs k WHERE k.book_uuid = j.book_uuid) LIMIT \(limit))
            RETURNING id
            """,
            reads: true
        )
        // Pages of a paged endpoint no live job will finish (its generation completed, superseded,
        // or its job pruned): a failed job keeps its pages for `retry`. A worker storing a page
        // holds its running job's row, so a page in progress is never taken.
        let pages = SQLStep(
            """
            DELETE FROM analytics_pages WHERE (book_uuid, generation) IN (
                SELECT p.book_uuid, p.generation FROM analytics_pages p WHERE NOT EXISTS (
                    SELECT 1 FROM analytics_jobs j WHERE j.book_uuid = p.book_uuid AND j.generation = p.generation
                    AND j.state IN ('pending', 'running', 'failed'))
                LIMIT \(limit))
            RETURNING page_offset
            """,
            reads: true
        )
        return try await perform(
            StoreOperation(
                .transaction,
                .run(deliveries) { d in
                    let deliveries = d.count
                    return .run(notifications) { n in
                        let notifications = n.count
                        return .run(jobs) { j in
                            let jobs = j.count
                            return .run(pages) { _ in .done(PruneCounts(deliveries: deliveries, notifications: notifications, jobs: jobs)) }
                        }
                    }
                }
            )
        )
    }

    /// `StoreMaintenance.sharedState` for both stores.
    public func sharedState(_ key: String) async throws -> String? {
        try await perform(
            StoreOperation(.read, SQLStep("SELECT value FROM deployment_state WHERE key = \(key)", reads: true)) {
                try $0.first?.optionalString("value")
            }
        )
    }

    /// The row is created first (empty: no value yet) so that concurrent replicas serialise on
    /// its lock; then read, transformed and written in the same transaction.
    @discardableResult
    public func updateSharedState(_ key: String, at now: Date, _ transform: @escaping @Sendable (String?) -> String) async throws -> String {
        let t = now.storageMillis
        let create = SQLStep(
            "INSERT INTO deployment_state (key, value, updated_at) VALUES (\(key), '', \(t)) ON CONFLICT (key) DO NOTHING"
        )
        let read = SQLStep("SELECT value FROM deployment_state WHERE key = \(key)\(.rowLock)", reads: true)
        return try await perform(
            StoreOperation(
                .transaction,
                .run(create) { _ in
                    .run(read) { rows in
                        let current = try rows.first?.optionalString("value")
                        let next = transform(current.flatMap { $0.isEmpty ? nil : $0 })
                        return .run(SQLStep("UPDATE deployment_state SET value = \(next), updated_at = \(t) WHERE key = \(key)")) { _ in
                            .done(next)
                        }
                    }
                }
            )
        )
    }
}

/// The Book statements both stores run.
package enum BookStatements {
    /// The `books` rows with their label and name (`book_label`, `book_name`), to which a
    /// `WHERE` clause is added.
    static let withLabels =
        "SELECT books.*, l.label AS book_label, l.name AS book_name FROM books LEFT JOIN book_labels l ON l.book_uuid = books.uuid"

    /// Tracked Books by state (the scrape's gauge, `status`'s totals), on the partial index
    /// `books_tracked_state` (SQLite reads no row for it; measured at 100k Books).
    package static let totals = SQLStep("SELECT state, COUNT(*) AS n FROM books WHERE untracked_at IS NULL GROUP BY state", reads: true)

    /// Tracked Books not at rest (the outage detector's exposure), from the same index.
    package static let processing = SQLStep(
        "SELECT COUNT(*) AS n FROM books WHERE state IN \(unescaped: BooksTable.activeStates) AND untracked_at IS NULL",
        reads: true
    )

    /// Tracked finished Books with a poll pending (their retention polls), on the partial index
    /// `books_polled_state` (the Books within their retention window, no row read).
    package static let finishedPolled = SQLStep(
        "SELECT COUNT(*) AS n FROM books WHERE state IN \(unescaped: BooksTable.finishedStates) AND untracked_at IS NULL AND next_poll_at IS NOT NULL",
        reads: true
    )

    static func totals(_ rows: [any SQLRow]) throws -> [BookPhase: Int] {
        try bookTotals(rows.map { (try $0.string("state"), try $0.int("n")) })
    }

    /// The jobs of several Books, with when each generation's newest result was stored.
    static func jobs(of keys: [String]) -> SQLStep {
        SQLStep(
            """
            SELECT j.*, (SELECT MAX(r.retrieved_at) FROM analytics_results r
                         WHERE r.book_uuid = j.book_uuid AND r.generation = j.generation) AS retrieved_at
            FROM analytics_jobs j WHERE j.book_uuid IN \(set: keys)
            """,
            reads: true
        )
    }
}

extension StoredJob {
    /// An `analytics_jobs` row with its `retrieved_at`.
    init(row: any SQLRow) throws {
        self.init(
            generation: try row.int("generation"),
            state: try row.string("state"),
            attempts: try row.int("attempts"),
            dueAt: try row.optionalInt64("due_at"),
            lastError: try row.optionalString("last_error"),
            completedAt: try row.optionalInt64("completed_at"),
            retrievedAt: try row.optionalInt64("retrieved_at")
        )
    }
}
