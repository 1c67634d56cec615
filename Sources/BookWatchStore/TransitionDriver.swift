import BookWatchCore
import Foundation

/// One transition (`BookStore.apply`) as a conversation with the database, written once for both
/// stores: the driver says which statement to run next, the store runs it in its transaction and
/// hands back the rows, until the driver says what the transition came to. Every decision and
/// every statement lives here (and in `TransitionPlan`); a store only executes them
/// (`SQLStatementStore.apply` runs the driver through the store's `perform`).
///
/// This shape (a state machine that asks for I/O instead of doing it) lets the synchronous SQLite
/// transaction and the asynchronous PostgreSQL one share the logic; see docs/decisions.md.
package struct TransitionDriver {
    /// What the store does next.
    package enum Step {
        /// Run this statement and call `next` with its rows (none for a write without `RETURNING`).
        case run(SQLStep)
        /// Commit: the transition came to this (nil: nothing applies, e.g. a hint for an untracked Book).
        case finish(TransitionOutcome?)
    }

    private enum Stage {
        case start
        /// Read the Book's row (locked where the dialect locks); `again` after losing a race to create it.
        case book(again: Bool)
        /// Inserted the bare row of a new Book, or found another transaction had.
        case claimedRow
        case documents(StoredBook, resuming: Bool)
        case lastJob
        case writing([SQLStep], TransitionOutcome)
        case done
    }

    private var input: BookInput
    private let uuid: BookUUID
    private let now: Date
    private let options: TransitionOptions
    private let draw: Double
    private let schedule: PollSchedule
    private var stage = Stage.start

    /// `draw` is the transition's jitter in `0..<1`, from the store's random source.
    package init(_ input: BookInput, uuid: BookUUID, now: Date, options: TransitionOptions, draw: Double, schedule: PollSchedule) {
        self.input = input
        self.uuid = uuid
        self.now = now
        self.options = options
        self.draw = draw
        self.schedule = schedule
    }

    private var key: String { uuid.rawValue }

    /// The next step, given the rows the previous statement answered (ignored for the first).
    package mutating func next(_ rows: [any SQLRow]) throws -> Step {
        switch stage {
        case .start:
            stage = .book(again: false)
            return .run(Self.readBook(key))
        case .book(let again):
            if let row = rows.first {
                let book = try StoredBook(row: row)
                var resuming = false
                // A tombstone: only the operator's track brings the Book back, where it left off.
                if book.untrackedAt != nil {
                    guard let resumed = TransitionPlan.resuming(input) else { return finish(nil) }
                    input = resumed
                    resuming = true
                }
                stage = .documents(book, resuming: resuming)
                return .run(Self.readDocuments([key]))
            }
            if again { return readLastJob() }
            guard TransitionPlan.mayCreate(input) else { return finish(nil) }
            // Two replicas may track the same new Book at once: the row is claimed first, so the
            // second waits for the first to commit and then tracks the existing Book (an upsert
            // would overwrite whatever happened to it in between).
            stage = .claimedRow
            return .run(
                SQLStep(
                    """
                    INSERT INTO books (uuid, state, generation, created_at, updated_at)
                    VALUES (\(key), 'tracking', 1, \(now.storageMillis), \(now.storageMillis))
                    ON CONFLICT (uuid) DO NOTHING RETURNING uuid
                    """,
                    reads: true
                )
            )
        case .claimedRow:
            if rows.isEmpty {
                stage = .book(again: true)
                return .run(Self.readBook(key))
            }
            return readLastJob()
        case .documents(let book, let resuming):
            var machine = try book.machine(documents: try rows.map { try StoredDocument(row: $0) })
            return decide(&machine, stored: book.schedule, resuming: resuming, untrackedAt: book.untrackedAt, created: false)
        case .lastJob:
            // Continues after any generation a previous tracking opened a job for, so the unique
            // (book, generation) key of analytics jobs is never reused.
            let last = try rows.first.map { try $0.int("g") } ?? 0
            var machine = BookMachine.fresh(uuid: uuid, afterGeneration: last)
            return decide(&machine, stored: .none, resuming: false, untrackedAt: nil, created: true)
        case .writing(let steps, let outcome):
            return write(steps, outcome)
        case .done:
            preconditionFailure("TransitionDriver.next after finish")
        }
    }

    /// The next of the transition's writes, or the finish after the last.
    private mutating func write(_ steps: [SQLStep], _ outcome: TransitionOutcome) -> Step {
        guard let step = steps.first else { return finish(outcome) }
        stage = .writing(Array(steps.dropFirst()), outcome)
        return .run(step)
    }

    private mutating func finish(_ outcome: TransitionOutcome?) -> Step {
        stage = .done
        return .finish(outcome)
    }

    private mutating func readLastJob() -> Step {
        stage = .lastJob
        return .run(SQLStep("SELECT COALESCE(MAX(generation), 0) AS g FROM analytics_jobs WHERE book_uuid = \(key)", reads: true))
    }

    private mutating func decide(_ machine: inout BookMachine, stored: StoredSchedule, resuming: Bool, untrackedAt: Int64?, created: Bool) -> Step {
        var steps: [SQLStep] = []
        // Marked only when the hint is applied: a hint for an unknown Book without `trackUnknown`
        // leaves its row for the caller.
        if let row = input.hintDelivery.inboxRow { steps.append(Self.markInboxApplied(row, at: now)) }
        let (actions, plan) = TransitionPlan.decide(
            input,
            machine: &machine,
            stored: stored,
            options: options,
            now: now,
            draw: draw,
            schedule: schedule,
            resuming: resuming,
            untrackedAt: untrackedAt,
            created: created
        )
        steps += Self.carryOut(plan, machine: machine, results: input.jobReport.results, now: now)
        let outcome = TransitionOutcome(
            machine: machine,
            actions: actions,
            created: created,
            nextPollAt: plan.schedule.next.map(Date.init(storageMillis:))
        )
        return write(steps, outcome)
    }

    // MARK: statements

    /// A Book's row, locked until the transaction ends where the dialect locks (the row lock
    /// serialises a Book's transitions across replicas).
    package static func readBook(_ key: String) -> SQLStep {
        SQLStep("SELECT * FROM books WHERE uuid = \(key)\(.rowLock)", reads: true)
    }

    /// The documents of several Books, by Book and in position order.
    package static func readDocuments(_ keys: [String]) -> SQLStep {
        SQLStep("SELECT * FROM documents WHERE book_uuid IN \(set: keys) ORDER BY book_uuid, position", reads: true)
    }

    /// Marks the inbox row a hint comes from, in the hint's transaction; a row already processed
    /// (by another worker) rolls the transition back.
    package static func markInboxApplied(_ row: Int64, at now: Date) -> SQLStep {
        SQLStep(
            """
            UPDATE webhook_inbox SET processed_at = \(now.storageMillis), outcome = \(InboxOutcome.applied.stored), claimed_by = NULL
            WHERE id = \(row) AND processed_at IS NULL RETURNING id
            """,
            required: StoreError(.duplicate, subject: "inbox row \(row)", detail: "already processed")
        )
    }

    /// The fence of a worker's write: the job must still be running under its claim (the row
    /// locked where the dialect locks), else the transaction is rolled back with `.lostClaim`.
    package static func holdFence(_ key: String, _ generation: Int, _ claim: JobClaim) -> SQLStep {
        SQLStep(
            """
            SELECT id FROM analytics_jobs WHERE book_uuid = \(key) AND generation = \(generation) AND state = 'running'
                AND lease_owner = \(claim.owner) AND claims = \(claim.token)\(.rowLock)
            """,
            required: StoreError(
                .lostClaim,
                subject: "analytics job \(key) generation \(generation)",
                detail: "claim \(claim.token) of \(claim.owner)"
            )
        )
    }

    /// Stores one endpoint's result; one already stored for the (book, generation, endpoint) is kept.
    package static func insertResult(_ result: AnalyticsResult) -> SQLStep {
        SQLStep(
            """
            INSERT INTO analytics_results (book_uuid, generation, endpoint, body, retrieved_at)
            VALUES (\(result.bookUUID.rawValue), \(result.generation), \(result.endpoint), \(result.body), \(result.retrievedAt.storageMillis))
            ON CONFLICT (book_uuid, generation, endpoint) DO NOTHING
            """
        )
    }

    /// The statements that write the machine and the rows its plan asks for, in order.
    package static func carryOut(_ plan: TransitionPlan, machine m: BookMachine, results: [AnalyticsResult], now: Date) -> [SQLStep] {
        let key = m.uuid.rawValue
        let t = now.storageMillis
        var steps: [SQLStep] = []
        if let fence = plan.fence { steps.append(holdFence(key, fence.generation, fence.claim)) }
        steps += results.map(insertResult)
        for (g, change) in plan.jobs {
            steps.append(SQLStep(jobUpdate(change, key: key, generation: g, now: t)))
            if change == .finish(.superseded), m.generation > g {
                // Superseded by a reopen, a generation keeps no results: fetched while the Book
                // changed, they may be the next generation's (which retrieves them). After the
                // job's update: that waits for a worker's fenced insert in flight, which this
                // statement then sees. (Superseded by a deletion, they are the last: kept.)
                steps.append(SQLStep("DELETE FROM analytics_results WHERE book_uuid = \(key) AND generation = \(g)"))
                steps.append(SQLStep("DELETE FROM analytics_pages WHERE book_uuid = \(key) AND generation = \(g)"))
            }
        }
        for g in plan.notify {
            steps.append(
                SQLStep("INSERT INTO notifications (book_uuid, generation, created_at) VALUES (\(key), \(g), \(t)) ON CONFLICT DO NOTHING")
            )
        }
        steps += writeBook(m, schedule: plan.schedule, untracked: plan.untrack, now: t)
        if let name = plan.bookName { steps.append(BookLabels.setName(key, name, fillOnly: plan.bookNameFillsOnly)) }
        return steps
    }

    /// The statements that write a machine's `books` row (an upsert) and its documents.
    package static func writeBook(_ m: BookMachine, schedule s: StoredSchedule, untracked: Bool = false, now t: Int64) -> [SQLStep] {
        let key = m.uuid.rawValue
        var steps: [SQLStep] = []
        let untrackedAt: Int64? = untracked ? t : nil
        let values: [any SQLBindable] = [
            key, m.pk, m.phase.rawValue, m.generation, m.lastOpenedGeneration, m.bookStatus?.rawValue,
            m.failureReason, m.lastWebhookAt?.storageMillis, m.lastSnapshotAt?.storageMillis, m.finishedAt?.storageMillis,
            s.next, s.reason, s.claimedAt, s.snapshotAsOf, m.watchedSinceCreation, m.doubt?.kind.rawValue,
            m.doubt?.since.storageMillis, Int64(s.failures), untrackedAt, t, t, StoredBook.storedEvidence(m.finishEvidence),
        ]
        steps.append(
            SQLStep(
                "INSERT INTO books (\(unescaped: BooksTable.columnList)) VALUES \(row: values.map(\.sqlValue)) \(unescaped: BooksTable.upsert)"
            )
        )
        steps.append(SQLStep("DELETE FROM documents WHERE book_uuid = \(key)"))
        // Several rows per INSERT, a bounded number each: binds stay far under both databases'
        // limits (SQLite 32,766; PostgreSQL's protocol 65,535) however many documents a Book has.
        let documents = Array(m.documents.enumerated())
        for start in stride(from: 0, to: documents.count, by: SQLQuery.rowsPerStatement) {
            var insert: SQLQuery = "INSERT INTO documents (book_uuid, position, pk, uuid, status, hint, covered, rejection_reason) VALUES "
            for (position, document) in documents[start..<min(start + SQLQuery.rowsPerStatement, documents.count)] {
                let d = StoredDocument(document)
                let row: [any SQLBindable] = [key, position, d.pk, d.uuid, d.status, d.hint, d.covered, d.rejectionReason]
                let separator: SQLQuery = position == start ? "" : ", "
                insert = insert + separator + "\(list: row.map(\.sqlValue))"
            }
            steps.append(SQLStep(insert))
        }
        return steps
    }

    /// The update of one analytics job row that `change` asks for.
    static func jobUpdate(_ change: JobChange, key: String, generation g: Int, now t: Int64) -> SQLQuery {
        switch change {
        case .open:
            return """
                INSERT INTO analytics_jobs (book_uuid, generation, state, attempts, due_at, created_at)
                VALUES (\(key), \(g), 'pending', 0, \(t), \(t))
                """
        case .finish(let state):
            // Complete: an earlier attempt's transient error is history, not the job's state.
            let clearError: SQLQuery = state == .complete ? ", last_error = NULL" : ""
            return """
                UPDATE analytics_jobs SET state = \(state.rawValue), completed_at = \(t), lease_owner = NULL, lease_expires_at = NULL\(clearError)
                WHERE book_uuid = \(key) AND generation = \(g) AND state NOT IN ('complete', 'failed', 'superseded')
                """
        case .expedite:
            return """
                UPDATE analytics_jobs SET due_at = CASE WHEN state = 'pending' THEN \(.least)(due_at, \(t)) ELSE due_at END,
                    ready_announced = \(.true)
                WHERE book_uuid = \(key) AND generation = \(g) AND state IN ('pending', 'running')
                """
        case .confirmed(let asOf):
            return """
                UPDATE analytics_jobs SET due_at = \(.least)(due_at, \(t)), awaiting_view_since = NULL, view_confirmed = \(.true)
                WHERE book_uuid = \(key) AND generation = \(g) AND state = 'pending' AND awaiting_view_since <= \(asOf)
                """
        case .retry(let due, let countsError, let awaitingView, let error):
            // A real error is kept for `status UUID`; waiting (425) keeps the last one.
            let lastError: SQLQuery = error.map { ", last_error = \($0)" } ?? ""
            return """
                UPDATE analytics_jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL\(lastError),
                    due_at = CASE WHEN ready_announced = \(.true) AND state = 'running' THEN \(min(due, t)) ELSE \(due) END,
                    ready_announced = \(.false), attempts = attempts + \(countsError ? 1 : 0),
                    awaiting_view_since = \(awaitingView ? t : nil), view_confirmed = \(.false)
                WHERE book_uuid = \(key) AND generation = \(g) AND state IN ('pending', 'running')
                """
        case .resume(let due, let untrackedFor):
            return """
                UPDATE analytics_jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, due_at = \(due),
                    ready_announced = \(.false), awaiting_view_since = \(t), view_confirmed = \(.false),
                    created_at = \(.greatest)(created_at, \(.least)(created_at + \(untrackedFor), \(t)))
                WHERE book_uuid = \(key) AND generation = \(g) AND state IN ('pending', 'running')
                """
        case .rearm:
            return """
                UPDATE analytics_jobs SET state = 'pending', attempts = 0, due_at = \(t), last_error = NULL, created_at = \(t),
                    lease_owner = NULL, lease_expires_at = NULL, awaiting_view_since = NULL, view_confirmed = \(.false)
                WHERE book_uuid = \(key) AND generation = \(g) AND state = 'failed'
                """
        case .fail(let reason):
            return """
                UPDATE analytics_jobs SET state = 'failed', last_error = \(reason), completed_at = \(t),
                    lease_owner = NULL, lease_expires_at = NULL
                WHERE book_uuid = \(key) AND generation = \(g) AND state IN ('pending', 'running')
                """
        }
    }
}

extension StoredBook {
    /// A `books` row as either store read it.
    package init(row: some SQLRow) throws {
        self.init(
            uuid: try row.string("uuid"),
            pk: try row.optionalInt("pk"),
            state: try row.string("state"),
            generation: try row.int("generation"),
            lastOpenedGeneration: try row.int("last_opened_generation"),
            bookStatus: try row.optionalString("book_status"),
            failureReason: try row.optionalString("failure_reason"),
            lastWebhookAt: try row.optionalInt64("last_webhook_at"),
            lastPolledAt: try row.optionalInt64("last_polled_at"),
            finishedAt: try row.optionalInt64("finished_at"),
            watchedSinceCreation: try row.bool("watched_since_creation"),
            doubtKind: try row.optionalString("doubt_kind"),
            doubtSince: try row.optionalInt64("doubt_since"),
            finishEvidence: try row.optionalInt64("finish_evidence"),
            untrackedAt: try row.optionalInt64("untracked_at"),
            schedule: StoredSchedule(
                next: try row.optionalInt64("next_poll_at"),
                reason: try row.optionalString("poll_reason"),
                claimedAt: try row.optionalInt64("poll_claimed_at"),
                snapshotAsOf: try row.optionalInt64("snapshot_as_of"),
                failures: try row.int("poll_failures")
            )
        )
    }
}

extension StoredDocument {
    /// A `documents` row as either store read it.
    package init(row: some SQLRow) throws {
        self.init(
            pk: try row.optionalInt("pk"),
            uuid: try row.optionalString("uuid"),
            status: try row.optionalString("status"),
            hint: try row.optionalString("hint"),
            covered: try row.bool("covered"),
            rejectionReason: try row.optionalString("rejection_reason")
        )
    }
}
