import BookWatchCore
import Foundation
import GRDB

extension SQLiteBookStore {
    public func apply(
        _ input: BookInput,
        to uuid: BookUUID,
        at now: Date,
        options: TransitionOptions = .init()
    )
        async throws -> TransitionOutcome?
    {
        let draw = random()
        return try await write { db in
            var input = input
            var resuming = false
            var created = false
            var machine: BookMachine
            var stored = StoredSchedule.none
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM books WHERE uuid = ?", arguments: [uuid.rawValue]) {
                let book = Self.storedBook(row)
                // A tombstone: only the operator's track brings the Book back, where it left off.
                if book.untrackedAt != nil {
                    guard let resumed = TransitionPlan.resuming(input) else { return nil }
                    input = resumed
                    resuming = true
                }
                machine = try book.machine(documents: Self.documentRows(db, uuid: uuid))
                stored = book.schedule
            } else {
                guard TransitionPlan.mayCreate(input, options: options) else { return nil }
                machine = try Self.freshMachine(db, uuid: uuid)
                created = true
            }
            // Marked only when the hint is applied: a hint for an unknown Book without
            // `trackUnknown` leaves its row for the caller.
            if let row = options.inboxRow {
                try Self.markInboxApplied(db, row: row, at: now)
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
            try Self.carryOut(plan, machine: machine, results: options.results, now: now, db: db)
            return TransitionOutcome(
                machine: machine,
                actions: actions,
                created: created,
                nextPollAt: plan.schedule.next.map(Date.init(storageMillis:))
            )
        }
    }

    /// Marks the inbox row a hint comes from, in the hint's transaction; a row already processed
    /// (by another worker) rolls the transition back.
    static func markInboxApplied(_ db: Database, row: Int64, at now: Date) throws {
        try db.execute(
            sql: "UPDATE webhook_inbox SET processed_at = ?, outcome = ?, claimed_by = NULL WHERE id = ? AND processed_at IS NULL",
            arguments: [now.storageMillis, InboxOutcome.applied.stored, row]
        )
        guard db.changesCount == 1 else {
            throw StoreError(.duplicate, subject: "inbox row \(row)", detail: "already processed")
        }
    }

    static func storedBook(_ row: Row) -> StoredBook {
        StoredBook(
            uuid: row["uuid"],
            pk: row["pk"],
            state: row["state"],
            generation: row["generation"],
            lastOpenedGeneration: row["last_opened_generation"],
            bookStatus: row["book_status"],
            failureReason: row["failure_reason"],
            lastWebhookAt: row["last_webhook_at"],
            lastPolledAt: row["last_polled_at"],
            finishedAt: row["finished_at"],
            watchedSinceCreation: row["watched_since_creation"],
            doubtKind: row["doubt_kind"],
            doubtSince: row["doubt_since"],
            untrackedAt: row["untracked_at"],
            schedule: StoredSchedule(
                next: row["next_poll_at"],
                reason: row["poll_reason"],
                claimedAt: row["poll_claimed_at"],
                snapshotAsOf: row["snapshot_as_of"],
                failures: row["poll_failures"]
            )
        )
    }

    static func storedDocument(_ row: Row) -> StoredDocument {
        StoredDocument(
            pk: row["pk"],
            uuid: row["uuid"],
            status: row["status"],
            hint: row["hint"],
            covered: row["covered"],
            rejectionReason: row["rejection_reason"]
        )
    }

    /// A new machine for `uuid`, continuing after any generation a previous tracking opened a job
    /// for, so that the unique (book, generation) key of analytics jobs is never reused.
    static func freshMachine(_ db: Database, uuid: BookUUID) throws -> BookMachine {
        let lastJob =
            try Int.fetchOne(
                db,
                sql: "SELECT MAX(generation) FROM analytics_jobs WHERE book_uuid = ?",
                arguments: [uuid.rawValue]
            ) ?? 0
        return BookMachine.fresh(uuid: uuid, afterGeneration: lastJob)
    }

    /// Writes the machine and the rows its plan asks for.
    static func carryOut(
        _ plan: TransitionPlan,
        machine: BookMachine,
        results: [AnalyticsResult],
        now: Date,
        db: Database
    ) throws {
        let key = machine.uuid.rawValue
        let nowMillis = now.storageMillis
        if let fence = plan.fence { try Self.holdFence(db, key, fence.generation, fence.claim) }
        for result in results {
            try db.execute(
                sql: """
                    INSERT INTO analytics_results (book_uuid, generation, endpoint, body, retrieved_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(book_uuid, generation, endpoint) DO NOTHING
                    """,
                arguments: [result.bookUUID.rawValue, result.generation, result.endpoint, Data(result.body), result.retrievedAt.storageMillis]
            )
        }
        for (generation, change) in plan.jobs {
            switch change {
            case .open:
                try db.execute(
                    sql: """
                        INSERT INTO analytics_jobs (book_uuid, generation, state, attempts, due_at, created_at)
                        VALUES (?, ?, 'pending', 0, ?, ?)
                        """,
                    arguments: [key, generation, nowMillis, nowMillis]
                )
            case .finish(let state):
                try Self.setJobState(db, key, generation, state, now: nowMillis)
                if state == .superseded, machine.generation > generation {
                    // Superseded by a reopen, a generation keeps no results: fetched while the
                    // Book changed, they may be the next generation's (which retrieves them).
                    // (Superseded by a deletion, they are the last ones there will be: kept.)
                    try db.execute(
                        sql: "DELETE FROM analytics_results WHERE book_uuid = ? AND generation = ?",
                        arguments: [key, generation]
                    )
                }
            case .expedite:
                try db.execute(
                    sql: """
                        UPDATE analytics_jobs SET due_at = CASE WHEN state = 'pending' THEN MIN(due_at, ?) ELSE due_at END, ready_announced = 1
                        WHERE book_uuid = ? AND generation = ? AND state IN ('pending', 'running')
                        """,
                    arguments: [nowMillis, key, generation]
                )
            case .confirmed(let asOf):
                try db.execute(
                    sql: """
                        UPDATE analytics_jobs SET due_at = MIN(due_at, ?), awaiting_view_since = NULL, view_confirmed = 1
                        WHERE book_uuid = ? AND generation = ? AND state = 'pending' AND awaiting_view_since <= ?
                        """,
                    arguments: [nowMillis, key, generation, asOf]
                )
            case .retry(let due, let countsError, let awaitingView):
                try db.execute(
                    sql: """
                        UPDATE analytics_jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                            due_at = CASE WHEN ready_announced = 1 AND state = 'running' THEN ? ELSE ? END, ready_announced = 0,
                            attempts = attempts + ?, awaiting_view_since = ?, view_confirmed = 0
                        WHERE book_uuid = ? AND generation = ? AND state IN ('pending', 'running')
                        """,
                    arguments: [min(due, nowMillis), due, countsError ? 1 : 0, awaitingView ? nowMillis : nil, key, generation]
                )
            case .rearm:
                try db.execute(
                    sql: """
                        UPDATE analytics_jobs SET state = 'pending', attempts = 0, due_at = ?, last_error = NULL, created_at = ?,
                            lease_owner = NULL, lease_expires_at = NULL, awaiting_view_since = NULL, view_confirmed = 0
                        WHERE book_uuid = ? AND generation = ? AND state = 'failed'
                        """,
                    arguments: [nowMillis, nowMillis, key, generation]
                )
            case .fail(let reason):
                try db.execute(
                    sql: """
                        UPDATE analytics_jobs SET state = 'failed', last_error = ?, completed_at = ?,
                            lease_owner = NULL, lease_expires_at = NULL
                        WHERE book_uuid = ? AND generation = ? AND state IN ('pending', 'running')
                        """,
                    arguments: [reason, nowMillis, key, generation]
                )
            }
        }
        for generation in plan.notify {
            try db.execute(
                sql: "INSERT INTO notifications (book_uuid, generation, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                arguments: [key, generation, nowMillis]
            )
        }
        try Self.writeBook(db, machine, schedule: plan.schedule, untracked: plan.untrack, now: nowMillis)
    }

    /// The fence of a worker's write: the job must still be running under its claim, else the
    /// transaction is rolled back with `.lostClaim`.
    static func holdFence(_ db: Database, _ key: String, _ generation: Int, _ claim: JobClaim) throws {
        let held =
            try Bool.fetchOne(
                db,
                sql: """
                    SELECT 1 FROM analytics_jobs WHERE book_uuid = ? AND generation = ? AND state = 'running'
                    AND lease_owner = ? AND claims = ?
                    """,
                arguments: [key, generation, claim.owner, claim.token]
            ) ?? false
        guard held else {
            throw StoreError(.lostClaim, subject: "analytics job \(key) generation \(generation)", detail: "claim \(claim.token) of \(claim.owner)")
        }
    }

    static func setJobState(
        _ db: Database,
        _ key: String,
        _ generation: Int,
        _ state: AnalyticsJobState,
        now: Int64
    )
        throws
    {
        let finalStates = "('complete', 'failed', 'superseded')"
        try db.execute(
            sql: """
                UPDATE analytics_jobs SET state = ?, completed_at = ?, lease_owner = NULL, lease_expires_at = NULL
                WHERE book_uuid = ? AND generation = ? AND state NOT IN \(finalStates)
                """,
            arguments: [state.rawValue, now, key, generation]
        )
    }

    static func writeBook(_ db: Database, _ m: BookMachine, schedule: StoredSchedule, untracked: Bool = false, now: Int64) throws {
        let key = m.uuid.rawValue
        try db.execute(
            sql: "INSERT INTO books (\(BooksTable.columnList)) VALUES (\(databaseQuestionMarks(count: BooksTable.columns.count))) "
                + BooksTable.upsert,
            arguments: [
                key, m.pk, m.phase.rawValue, m.generation, m.lastOpenedGeneration, m.bookStatus?.rawValue,
                m.failureReason, m.lastWebhookAt?.storageMillis, m.lastSnapshotAt?.storageMillis,
                m.finishedAt?.storageMillis, schedule.next, schedule.reason, schedule.claimedAt, schedule.snapshotAsOf,
                m.watchedSinceCreation, m.doubt?.kind.rawValue, m.doubt?.since.storageMillis, schedule.failures,
                untracked ? now : nil, now, now,
            ]
        )
        try db.execute(sql: "DELETE FROM documents WHERE book_uuid = ?", arguments: [key])
        let insert = try db.cachedStatement(
            sql: """
                INSERT INTO documents (book_uuid, position, pk, uuid, status, hint, covered, rejection_reason)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """
        )
        for (position, document) in m.documents.enumerated() {
            try insert.execute(arguments: [
                key, position, document.ref.pk, document.ref.uuid, document.status?.rawValue,
                document.hint?.rawValue, document.covered, document.rejectionReason,
            ])
        }
    }

    static func documentRows(_ db: Database, uuid: BookUUID) throws -> [StoredDocument] {
        try Row.fetchAll(db, sql: "SELECT * FROM documents WHERE book_uuid = ? ORDER BY position", arguments: [uuid.rawValue])
            .map(storedDocument)
    }
}
