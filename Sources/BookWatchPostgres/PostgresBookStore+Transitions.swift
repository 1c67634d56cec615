import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import PostgresNIO

extension PostgresBookStore {
    public func apply(
        _ input: BookInput,
        to uuid: BookUUID,
        at now: Date,
        options: TransitionOptions
    ) async throws
        -> TransitionOutcome?
    {
        let draw = random()
        let key = uuid.rawValue
        return try await transaction { c in
            var input = input
            var resuming = false
            var created = false
            var machine: BookMachine
            var stored = StoredSchedule.none
            // The row lock serialises this Book's transitions across replicas.
            let lockRow: PostgresQuery = "SELECT * FROM books WHERE uuid = \(key) FOR UPDATE"
            var row = try await Self.rows(c, lockRow, self.logger).first
            if row == nil {
                guard TransitionPlan.mayCreate(input, options: options) else { return nil }
                // Two replicas may track the same new Book at once: the row is claimed first, so
                // the second waits for the first to commit and then tracks the existing Book
                // (an upsert would overwrite whatever happened to it in between).
                let inserted = try await Self.rows(
                    c,
                    """
                    INSERT INTO books (uuid, state, generation, created_at, updated_at)
                    VALUES (\(key), 'tracking', 1, \(now.storageMillis), \(now.storageMillis))
                    ON CONFLICT (uuid) DO NOTHING RETURNING uuid
                    """,
                    self.logger
                )
                if inserted.isEmpty { row = try await Self.rows(c, lockRow, self.logger).first }
            }
            if let row {
                let book = try Self.storedBook(row)
                // A tombstone: only the operator's track brings the Book back, where it left off.
                if book.untrackedAt != nil {
                    guard let resumed = TransitionPlan.resuming(input) else { return nil }
                    input = resumed
                    resuming = true
                }
                machine = try book.machine(documents: try await Self.documents(c, of: [key], self.logger)[key] ?? [])
                stored = book.schedule
            } else {
                let last =
                    try await Self.rows(
                        c,
                        "SELECT COALESCE(MAX(generation), 0) AS g FROM analytics_jobs WHERE book_uuid = \(key)",
                        self.logger
                    ).first?.value("g", as: Int.self) ?? 0
                machine = BookMachine.fresh(uuid: uuid, afterGeneration: last)
                created = true
            }
            // Marked only when the hint is applied: a hint for an unknown Book without
            // `trackUnknown` leaves its row for the caller.
            if let row = options.inboxRow {
                let marked = try await Self.rows(
                    c,
                    """
                    UPDATE webhook_inbox SET processed_at = \(now.storageMillis), outcome = \(InboxOutcome.applied.stored), claimed_by = NULL
                    WHERE id = \(row) AND processed_at IS NULL RETURNING id
                    """,
                    self.logger
                )
                guard !marked.isEmpty else { throw StoreError(.duplicate, subject: "inbox row \(row)", detail: "already processed") }
            }
            let (actions, plan) = TransitionPlan.decide(
                input,
                machine: &machine,
                stored: stored,
                options: options,
                now: now,
                draw: draw,
                schedule: self.schedule,
                resuming: resuming,
                created: created
            )
            try await self.carryOut(plan, machine: machine, results: options.results, now: now, connection: c)
            return TransitionOutcome(
                machine: machine,
                actions: actions,
                created: created,
                nextPollAt: plan.schedule.next.map(Date.init(storageMillis:))
            )
        }
    }

    /// Writes the machine and the rows its plan asks for (the SQLite store's `carryOut`, in SQL
    /// PostgreSQL speaks).
    func carryOut(
        _ plan: TransitionPlan,
        machine m: BookMachine,
        results: [AnalyticsResult],
        now: Date,
        connection c: PostgresConnection
    )
        async throws
    {
        let key = m.uuid.rawValue
        let t = now.storageMillis
        if let fence = plan.fence { try await Self.holdFence(c, key, fence.generation, fence.claim, logger) }
        for r in results {
            try await c.query(
                """
                INSERT INTO analytics_results (book_uuid, generation, endpoint, body, retrieved_at)
                VALUES (\(r.bookUUID.rawValue), \(r.generation), \(r.endpoint), \(Data(r.body)), \(r.retrievedAt.storageMillis))
                ON CONFLICT (book_uuid, generation, endpoint) DO NOTHING
                """,
                logger: logger
            )
        }
        for (g, change) in plan.jobs {
            let query: PostgresQuery
            switch change {
            case .open:
                query = """
                    INSERT INTO analytics_jobs (book_uuid, generation, state, attempts, due_at, created_at)
                    VALUES (\(key), \(g), 'pending', 0, \(t), \(t))
                    """
            case .finish(let state):
                query = """
                    UPDATE analytics_jobs SET state = \(state.rawValue), completed_at = \(t), lease_owner = NULL, lease_expires_at = NULL
                    WHERE book_uuid = \(key) AND generation = \(g) AND state NOT IN ('complete', 'failed', 'superseded')
                    """
            case .expedite:
                query = """
                    UPDATE analytics_jobs SET due_at = CASE WHEN state = 'pending' THEN LEAST(due_at, \(t)) ELSE due_at END, ready_announced = TRUE
                    WHERE book_uuid = \(key) AND generation = \(g) AND state IN ('pending', 'running')
                    """
            case .confirmed(let asOf):
                query = """
                    UPDATE analytics_jobs SET due_at = LEAST(due_at, \(t)), awaiting_view_since = NULL, view_confirmed = TRUE
                    WHERE book_uuid = \(key) AND generation = \(g) AND state = 'pending' AND awaiting_view_since <= \(asOf)
                    """
            case .retry(let due, let countsError, let awaitingView):
                query = """
                    UPDATE analytics_jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                        due_at = CASE WHEN ready_announced AND state = 'running' THEN \(min(due, t)) ELSE \(due) END, ready_announced = FALSE,
                        attempts = attempts + \(countsError ? 1 : 0), awaiting_view_since = \(awaitingView ? t : nil), view_confirmed = FALSE
                    WHERE book_uuid = \(key) AND generation = \(g) AND state IN ('pending', 'running')
                    """
            case .rearm:
                query = """
                    UPDATE analytics_jobs SET state = 'pending', attempts = 0, due_at = \(t), last_error = NULL, created_at = \(t),
                        lease_owner = NULL, lease_expires_at = NULL, awaiting_view_since = NULL, view_confirmed = FALSE
                    WHERE book_uuid = \(key) AND generation = \(g) AND state = 'failed'
                    """
            case .fail(let reason):
                query = """
                    UPDATE analytics_jobs SET state = 'failed', last_error = \(reason), completed_at = \(t),
                        lease_owner = NULL, lease_expires_at = NULL
                    WHERE book_uuid = \(key) AND generation = \(g) AND state IN ('pending', 'running')
                    """
            }
            try await c.query(query, logger: logger)
            if change == .finish(.superseded), m.generation > g {
                // Superseded by a reopen, a generation keeps no results: fetched while the Book
                // changed, they may be the next generation's (which retrieves them). After the
                // job's update: that waits for a worker's fenced insert in flight, which this
                // statement then sees. (Superseded by a deletion, they are the last: kept.)
                try await c.query("DELETE FROM analytics_results WHERE book_uuid = \(key) AND generation = \(g)", logger: logger)
            }
        }
        for g in plan.notify {
            try await c.query(
                "INSERT INTO notifications (book_uuid, generation, created_at) VALUES (\(key), \(g), \(t)) ON CONFLICT DO NOTHING",
                logger: logger
            )
        }
        let s = plan.schedule
        let untrackedAt: Int64? = plan.untrack ? t : nil
        try await c.query(
            """
            INSERT INTO books (\(unescaped: BooksTable.columnList))
            VALUES (\(key), \(m.pk), \(m.phase.rawValue), \(m.generation), \(m.lastOpenedGeneration), \(m.bookStatus?.rawValue),
                \(m.failureReason), \(m.lastWebhookAt?.storageMillis), \(m.lastSnapshotAt?.storageMillis), \(m.finishedAt?.storageMillis),
                \(s.next), \(s.reason), \(s.claimedAt), \(s.snapshotAsOf), \(m.watchedSinceCreation), \(m.doubt?.kind.rawValue),
                \(m.doubt?.since.storageMillis), \(Int64(s.failures)), \(untrackedAt), \(t), \(t))
            \(unescaped: BooksTable.upsert)
            """,
            logger: logger
        )
        try await c.query("DELETE FROM documents WHERE book_uuid = \(key)", logger: logger)
        for (position, document) in m.documents.enumerated() {
            let d = StoredDocument(document)
            try await c.query(
                """
                INSERT INTO documents (book_uuid, position, pk, uuid, status, hint, covered, rejection_reason)
                VALUES (\(key), \(position), \(d.pk), \(d.uuid), \(d.status), \(d.hint), \(d.covered), \(d.rejectionReason))
                """,
                logger: logger
            )
        }
    }

    static func storedBook(_ row: PostgresRandomAccessRow) throws -> StoredBook {
        StoredBook(
            uuid: try row.value("uuid"),
            pk: try row.value("pk"),
            state: try row.value("state"),
            generation: try row.value("generation"),
            lastOpenedGeneration: try row.value("last_opened_generation"),
            bookStatus: try row.value("book_status"),
            failureReason: try row.value("failure_reason"),
            lastWebhookAt: try row.value("last_webhook_at"),
            lastPolledAt: try row.value("last_polled_at"),
            finishedAt: try row.value("finished_at"),
            watchedSinceCreation: try row.value("watched_since_creation"),
            doubtKind: try row.value("doubt_kind"),
            doubtSince: try row.value("doubt_since"),
            untrackedAt: try row.value("untracked_at"),
            schedule: StoredSchedule(
                next: try row.value("next_poll_at"),
                reason: try row.value("poll_reason"),
                claimedAt: try row.value("poll_claimed_at"),
                snapshotAsOf: try row.value("snapshot_as_of"),
                failures: Int(try row.value("poll_failures", as: Int64.self))
            )
        )
    }

    /// The documents of several Books, in position order, by Book.
    static func documents(_ c: PostgresConnection, of keys: [String], _ logger: Logger) async throws -> [String: [StoredDocument]] {
        var documents: [String: [StoredDocument]] = [:]
        for row in try await rows(c, "SELECT * FROM documents WHERE book_uuid = ANY(\(keys)) ORDER BY book_uuid, position", logger) {
            documents[try row.value("book_uuid"), default: []].append(
                StoredDocument(
                    pk: try row.value("pk"),
                    uuid: try row.value("uuid"),
                    status: try row.value("status"),
                    hint: try row.value("hint"),
                    covered: try row.value("covered"),
                    rejectionReason: try row.value("rejection_reason")
                )
            )
        }
        return documents
    }
}
