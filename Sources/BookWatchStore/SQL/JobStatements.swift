import BookWatchCore
import Foundation

/// `JobStore`, and the analytics reads of `BookRegistry`, for both stores.
extension SQLStatementStore {
    /// Claims the most overdue pending job due by `now` (rows another replica is claiming are
    /// skipped): `running`, leased to `owner` until `now + lease`, a new claim token.
    public func claimAnalyticsJob(owner: String, now: Date, lease: TimeInterval) async throws -> ClaimedJob? {
        let expires = Date(storageMillis: now.addingTimeInterval(lease).storageMillis)
        let pick = SQLStep(
            """
            SELECT id, book_uuid, generation, attempts, created_at, claims, view_confirmed FROM analytics_jobs j
            WHERE state = 'pending' AND due_at <= \(now.storageMillis)
            AND NOT EXISTS (SELECT 1 FROM books b WHERE b.uuid = j.book_uuid AND b.untracked_at IS NOT NULL)
            ORDER BY due_at LIMIT 1\(.skipLocked)
            """,
            reads: true
        )
        return try await perform(
            StoreOperation(
                .transaction,
                .run(pick) { rows in
                    guard let row = rows.first else { return .done(nil) }
                    let key = try row.string("book_uuid")
                    guard let uuid = BookUUID(key) else { throw StoreError(.corrupt, subject: "analytics_jobs.book_uuid", detail: key) }
                    let job = ClaimedJob(
                        bookUUID: uuid,
                        generation: try row.int("generation"),
                        attempts: try row.int("attempts"),
                        leaseExpiresAt: expires,
                        openedAt: Date(storageMillis: try row.int64("created_at")),
                        claim: JobClaim(owner: owner, token: try row.int64("claims") + 1),
                        viewConfirmed: try row.bool("view_confirmed")
                    )
                    let claim = SQLStep(
                        """
                        UPDATE analytics_jobs SET state = 'running', lease_owner = \(owner), lease_expires_at = \(expires.storageMillis),
                            claims = claims + 1, view_confirmed = \(.false), ready_announced = \(.false)
                        WHERE id = \(try row.int64("id"))
                        """
                    )
                    return .run(claim) { _ in .done(job) }
                }
            )
        )
    }

    /// `JobStore.nextJobDueAt` for both stores.
    public func nextJobDueAt() async throws -> Date? {
        // As `claimAnalyticsJob` sees them: an untracked Book's job waits for `track`. The first
        // row in the pending jobs' index, not MIN() over a join: PostgreSQL planned that as a
        // hash anti-join reading every Book (21 ms at 100k Books; `bench scale`'s baseline).
        try await perform(
            StoreOperation(
                .read,
                SQLStep(
                    """
                    SELECT due_at AS t FROM analytics_jobs j WHERE state = 'pending' AND due_at IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM books b WHERE b.uuid = j.book_uuid AND b.untracked_at IS NOT NULL)
                    ORDER BY due_at LIMIT 1
                    """,
                    reads: true
                )
            ) { try $0.first?.optionalInt64("t").map(Date.init(storageMillis:)) }
        )
    }

    /// Returns jobs whose lease expired (their worker died) to `pending`, due now; answers how many.
    @discardableResult
    public func rearmExpiredLeases(now: Date) async throws -> Int {
        let t = now.storageMillis
        return try await perform(StoreOperation(.statement, JobStatements.rearm(now: t, where: "lease_expires_at < \(t)")) { $0.count })
    }

    /// On startup. One node owning the whole database (`ownsWholeDatabase`, SQLite): every claim a
    /// previous run left is its own: running jobs re-armed, claimed polls due now, inbox claims
    /// released. A replica sharing one: only its own claims and expired ones (another replica's
    /// live lease is its own).
    @discardableResult
    public func recoverLeases(owner: String, now: Date) async throws -> Int {
        let t = now.storageMillis
        guard ownsWholeDatabase else {
            let release = SQLStep(
                "UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL WHERE claimed_by = \(owner) AND processed_at IS NULL"
            )
            let rearm = JobStatements.rearm(now: t, where: "(lease_owner = \(owner) OR lease_expires_at < \(t))")
            return try await perform(StoreOperation(.transaction, .run(release) { _ in .run(rearm) { .done($0.count) } }))
        }
        let polls = SQLStep(
            "UPDATE books SET next_poll_at = \(.least)(next_poll_at, \(t)), poll_claimed_at = NULL WHERE poll_claimed_at IS NOT NULL"
        )
        let inbox = SQLStep(
            "UPDATE webhook_inbox SET claimed_by = NULL, claim_expires_at = NULL WHERE claimed_by IS NOT NULL AND processed_at IS NULL"
        )
        let rearm = JobStatements.rearm(now: t, where: "1 = 1")
        return try await perform(
            StoreOperation(.transaction, .run(rearm) { jobs in StoreOperation.chain([polls, inbox], then: .done(jobs.count)) })
        )
    }

    /// `JobStore.storeAnalyticsResult` for both stores. The fence and the insert commit together.
    public func storeAnalyticsResult(_ result: AnalyticsResult, claim: JobClaim) async throws {
        try await perform(
            StoreOperation(
                .transaction,
                writes: [
                    TransitionDriver.holdFence(result.bookUUID.rawValue, result.generation, claim),
                    TransitionDriver.insertResult(result),
                    SQLStep(
                        """
                        DELETE FROM analytics_pages WHERE book_uuid = \(result.bookUUID.rawValue) AND generation = \(result.generation)
                            AND endpoint = \(result.endpoint)
                        """
                    ),
                ]
            )
        )
    }

    /// `JobStore.storeAnalyticsPage` for both stores. The fence and the insert commit together.
    public func storeAnalyticsPage(_ page: AnalyticsPage, claim: JobClaim) async throws {
        let insert = SQLStep(
            """
            INSERT INTO analytics_pages (book_uuid, generation, endpoint, page_offset, body, retrieved_at)
            VALUES (\(page.bookUUID.rawValue), \(page.generation), \(page.endpoint), \(page.offset), \(page.body), \(page.retrievedAt.storageMillis))
            ON CONFLICT (book_uuid, generation, endpoint, page_offset) DO NOTHING
            """
        )
        try await perform(
            StoreOperation(.transaction, writes: [TransitionDriver.holdFence(page.bookUUID.rawValue, page.generation, claim), insert])
        )
    }

    /// `JobStore.discardAnalyticsPages` for both stores. The fence and the delete commit together.
    public func discardAnalyticsPages(_ uuid: BookUUID, generation: Int, endpoint: String, claim: JobClaim) async throws {
        let delete = SQLStep(
            "DELETE FROM analytics_pages WHERE book_uuid = \(uuid.rawValue) AND generation = \(generation) AND endpoint = \(endpoint)"
        )
        try await perform(StoreOperation(.transaction, writes: [TransitionDriver.holdFence(uuid.rawValue, generation, claim), delete]))
    }

    /// `JobStore.analyticsPages` for both stores.
    public func analyticsPages(_ uuid: BookUUID, generation: Int, endpoint: String) async throws -> [AnalyticsPage] {
        let select = SQLStep(
            """
            SELECT page_offset, body, retrieved_at FROM analytics_pages
            WHERE book_uuid = \(uuid.rawValue) AND generation = \(generation) AND endpoint = \(endpoint) ORDER BY page_offset
            """,
            reads: true
        )
        return try await perform(
            StoreOperation(.read, select) { rows in
                try rows.map { row in
                    AnalyticsPage(
                        bookUUID: uuid,
                        generation: generation,
                        endpoint: endpoint,
                        offset: try row.int("page_offset"),
                        body: try row.bytes("body"),
                        retrievedAt: Date(storageMillis: try row.int64("retrieved_at"))
                    )
                }
            }
        )
    }

    /// `JobStore.renewJobLease` for both stores.
    public func renewJobLease(_ claim: JobClaim, bookUUID: BookUUID, generation: Int, until: Date) async throws -> Bool {
        try await perform(
            StoreOperation(
                .statement,
                SQLStep(
                    """
                    UPDATE analytics_jobs SET lease_expires_at = \(until.storageMillis)
                    WHERE book_uuid = \(bookUUID.rawValue) AND generation = \(generation) AND state = 'running'
                        AND lease_owner = \(claim.owner) AND claims = \(claim.token)
                    RETURNING id
                    """,
                    reads: true
                )
            ) { !$0.isEmpty }
        )
    }

    /// `JobStore.storedEndpoints` for both stores.
    public func storedEndpoints(_ uuid: BookUUID, generation: Int) async throws -> Set<String> {
        try await perform(
            StoreOperation(
                .read,
                SQLStep("SELECT endpoint FROM analytics_results WHERE book_uuid = \(uuid.rawValue) AND generation = \(generation)", reads: true)
            ) { Set(try $0.map { try $0.string("endpoint") }) }
        )
    }

    /// `BookRegistry.isUntracked` for both stores.
    public func isUntracked(_ uuid: BookUUID) async throws -> Bool {
        try await perform(
            StoreOperation(.read, SQLStep("SELECT uuid FROM books WHERE uuid = \(uuid.rawValue) AND untracked_at IS NOT NULL", reads: true)) {
                !$0.isEmpty
            }
        )
    }

    /// `BookRegistry.analyticsResults` for both stores.
    public func analyticsResults(for uuid: BookUUID, endpoint: String?) async throws -> [AnalyticsResult] {
        let only: SQLQuery = endpoint.map { " AND endpoint = \($0)" } ?? ""
        return try await perform(
            StoreOperation(
                .read,
                SQLStep("SELECT * FROM analytics_results WHERE book_uuid = \(uuid.rawValue)\(only) ORDER BY generation DESC, endpoint", reads: true)
            ) { rows in
                try rows.map { row in
                    AnalyticsResult(
                        bookUUID: uuid,
                        generation: try row.int("generation"),
                        endpoint: try row.string("endpoint"),
                        body: try row.bytes("body"),
                        retrievedAt: Date(storageMillis: try row.int64("retrieved_at"))
                    )
                }
            }
        )
    }

    /// `BookRegistry.analyticsJobs(of:)` for both stores.
    public func analyticsJobs(of uuid: BookUUID) async throws -> [AnalyticsJobSummary] {
        try await perform(
            StoreOperation(.read, BookStatements.jobs(of: [uuid.rawValue])) { rows in
                try rows.map { try StoredJob(row: $0) }.sorted { $0.generation < $1.generation }.map { try $0.summary() }
            }
        )
    }

    /// `BookRegistry.recentDeliveries(about:limit:)` for both stores.
    public func recentDeliveries(about uuid: BookUUID, limit: Int) async throws -> [(delivery: StoredDelivery, outcome: String?)] {
        try await perform(
            StoreOperation(
                .read,
                SQLStep("SELECT * FROM webhook_inbox WHERE book_uuid = \(uuid.rawValue) ORDER BY id DESC LIMIT \(limit)", reads: true)
            ) { rows in try rows.map { (try StoredDelivery(row: $0), try $0.optionalString("outcome")) } }
        )
    }

    /// `BookRegistry.analyticsResults(retrievedSince:after:limit:)` for both stores: keyset paging
    /// on the results' unique key, so each page is one index range however many there are.
    public func analyticsResults(retrievedSince since: Date?, after: AnalyticsResult?, limit: Int) async throws -> [AnalyticsResult] {
        // Only finished retrievals: a generation whose job is still fetching (or failed) may have
        // some endpoints stored, and a job superseded meanwhile deletes them.
        var conditions: [SQLQuery] = [
            """
            NOT EXISTS (SELECT 1 FROM analytics_jobs j WHERE j.book_uuid = analytics_results.book_uuid
                        AND j.generation = analytics_results.generation AND j.state IN ('pending', 'running', 'failed'))
            """
        ]
        if let since { conditions.append("retrieved_at >= \(since.storageMillis)") }
        if let after {
            conditions.append("(book_uuid, generation, endpoint) > (\(after.bookUUID.rawValue), \(after.generation), \(after.endpoint))")
        }
        var query: SQLQuery = "SELECT * FROM analytics_results"
        for (index, condition) in conditions.enumerated() { query = query + (index == 0 ? " WHERE " : " AND ") + condition }
        query = query + " ORDER BY book_uuid, generation, endpoint LIMIT \(limit)"
        return try await perform(
            StoreOperation(.read, SQLStep(query, reads: true)) { rows in
                try rows.map { row in
                    let text = try row.string("book_uuid")
                    guard let uuid = BookUUID(text) else {
                        throw StoreError(.corrupt, subject: "analytics_results.book_uuid", detail: "'\(text)' is not a uuid")
                    }
                    return AnalyticsResult(
                        bookUUID: uuid,
                        generation: try row.int("generation"),
                        endpoint: try row.string("endpoint"),
                        body: try row.bytes("body"),
                        retrievedAt: Date(storageMillis: try row.int64("retrieved_at"))
                    )
                }
            }
        )
    }

    /// `BookRegistry.analyticsCounts` for both stores.
    public func analyticsCounts() async throws -> (jobs: [String: Int], results: Int) {
        let byState = SQLStep("SELECT state, COUNT(*) AS n FROM analytics_jobs GROUP BY state", reads: true)
        let results = SQLStep("SELECT COUNT(*) AS n FROM analytics_results", reads: true)
        let counts = try await perform(
            StoreOperation<JobCounts>(
                .read,
                .run(byState) { states in
                    let jobs = try Dictionary(states.map { (try $0.string("state"), try $0.int("n")) }, uniquingKeysWith: +)
                    return .run(results) { .done(JobCounts(jobs: jobs, results: try $0.first?.int("n") ?? 0)) }
                }
            )
        )
        return (counts.jobs, counts.results)
    }
}

extension SQLStatementStore where Self: JobHistoryReading {
    /// A Book's analytics jobs, oldest generation first (the chaos search's liveness check).
    package func jobHistory(_ uuid: BookUUID) async throws -> [JobHistoryRow] {
        try await perform(
            StoreOperation(
                .read,
                SQLStep(
                    "SELECT generation, state, last_error FROM analytics_jobs WHERE book_uuid = \(uuid.rawValue) ORDER BY generation",
                    reads: true
                )
            ) { rows in
                try rows.map {
                    JobHistoryRow(generation: try $0.int("generation"), state: try $0.string("state"), lastError: try $0.optionalString("last_error"))
                }
            }
        )
    }
}

extension SQLStatementStore {
    /// `JobHistoryReading.watchedBooks` for both stores.
    package func watchedBooks() async throws -> [WatchedBook] {
        try await perform(
            StoreOperation(
                .read,
                SQLStep(
                    """
                    SELECT b.uuid, b.state, b.generation, b.next_poll_at, j.generation AS job_generation, j.state AS job_state, j.due_at AS job_due_at
                    FROM books b LEFT JOIN analytics_jobs j ON j.book_uuid = b.uuid
                        AND j.generation = (SELECT MAX(generation) FROM analytics_jobs WHERE book_uuid = b.uuid)
                    WHERE b.untracked_at IS NULL ORDER BY b.uuid
                    """,
                    reads: true
                )
            ) { rows in try rows.map(WatchedBook.init(row:)) }
        )
    }
}

extension WatchedBook {
    /// A row of `watchedBooks`; a state this build does not know is refused, as elsewhere.
    init(row: any SQLRow) throws {
        let key = try row.string("uuid")
        guard let uuid = BookUUID(key) else { throw StoreError(.corrupt, subject: "books.uuid", detail: "'\(key)' is not a uuid") }
        let state = try row.string("state")
        guard let phase = BookPhase(rawValue: state) else {
            throw StoreError(.corrupt, subject: "books.state of \(key)", detail: "unknown state '\(state)'")
        }
        var job: Job?
        if let generation = try row.optionalInt("job_generation") {
            let jobState = try row.string("job_state")
            guard let known = AnalyticsJobState(rawValue: jobState) else {
                throw StoreError(.corrupt, subject: "analytics_jobs.state", detail: "unknown state '\(jobState)'")
            }
            job = Job(generation: generation, state: known, dueAt: try row.optionalInt64("job_due_at").map(Date.init(storageMillis:)))
        }
        self.init(
            uuid: uuid,
            phase: phase,
            generation: try row.int("generation"),
            nextPollAt: try row.optionalInt64("next_poll_at").map(Date.init(storageMillis:)),
            job: job
        )
    }
}

/// `analyticsCounts` as one Sendable answer.
private struct JobCounts: Sendable {
    var jobs: [String: Int]
    var results: Int
}

/// The job statements both stores run.
enum JobStatements {
    /// Running jobs matching `condition` back to pending, due `now`; one row per job re-armed.
    static func rearm(now t: Int64, where condition: SQLQuery) -> SQLStep {
        SQLStep(
            """
            UPDATE analytics_jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, due_at = \(t)
            WHERE state = 'running' AND \(condition) RETURNING id
            """,
            reads: true
        )
    }
}
