import BookWatchCore
import Foundation
import GRDB

extension SQLiteBookStore {
    public func apply(_ input: BookInput, to uuid: BookUUID, at now: Date, options: TransitionOptions = .init())
        async throws -> TransitionOutcome?
    {
        let draw = random()
        return try await write { db in
            var created = false
            var machine: BookMachine
            if let stored = try Self.loadMachine(db, uuid: uuid) {
                machine = stored
            } else {
                guard case .command(.track) = input else { return nil }
                machine = try Self.freshMachine(db, uuid: uuid)
                created = true
            }
            let actions = machine.apply(input, at: now)
            let nextPoll = try self.persist(
                machine, actions: actions, created: created, at: now, options: options, draw: draw, db: db)
            return TransitionOutcome(machine: machine, actions: actions, created: created, nextPollAt: nextPoll)
        }
    }

    /// A new machine for `uuid`, continuing after any generation a previous tracking opened a job
    /// for, so that the unique (book, generation) key of analytics jobs is never reused.
    static func freshMachine(_ db: Database, uuid: BookUUID) throws -> BookMachine {
        let lastJob = try Int.fetchOne(
            db, sql: "SELECT MAX(generation) FROM analytics_jobs WHERE book_uuid = ?", arguments: [uuid.rawValue]) ?? 0
        return BookMachine(
            uuid: uuid, pk: nil, phase: .tracking, generation: lastJob + 1, lastOpenedGeneration: lastJob,
            bookStatus: nil, documents: [], lastWebhookAt: nil, lastSnapshotAt: nil, finishedAt: nil,
            failureReason: nil)
    }

    /// Writes the machine and carries out its actions' rows; returns the stored next poll.
    func persist(
        _ machine: BookMachine, actions: [BookAction], created: Bool, at now: Date, options: TransitionOptions,
        draw: Double, db: Database
    ) throws -> Date? {
        let key = machine.uuid.rawValue
        let nowMillis = now.storageMillis
        for result in options.results {
            try db.execute(
                sql: """
                    INSERT INTO analytics_results (book_uuid, generation, endpoint, body, retrieved_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(book_uuid, generation, endpoint) DO NOTHING
                    """,
                arguments: [result.bookUUID.rawValue, result.generation, result.endpoint, Data(result.body), result.retrievedAt.storageMillis])
        }
        if actions.contains(.stopWatching) {
            for case .supersedeAnalyticsJob(let generation) in actions {
                try Self.setJobState(db, key, generation, .superseded, now: nowMillis)
            }
            try db.execute(sql: "DELETE FROM books WHERE uuid = ?", arguments: [key])
            return nil
        }

        var schedule = try Row.fetchOne(
            db, sql: "SELECT next_poll_at, poll_reason FROM books WHERE uuid = ?", arguments: [key])
            .map { (next: ($0["next_poll_at"] as Int64?), reason: ($0["poll_reason"] as String?)) }
            ?? (next: nil, reason: nil)

        func scheduled(_ cadence: PollCadence) -> Date? {
            self.schedule.nextPoll(
                cadence: cadence, lastWebhookAt: machine.lastWebhookAt, now: now,
                webhooksSilent: options.webhooksSilent, unitRandom: draw, finishedAt: machine.finishedAt)
        }
        for action in actions {
            switch action {
            case .pollNow(let reason):
                schedule = (nowMillis, reason.rawValue)
            case .postponePoll(let cadence):
                // Never delays an urgent poll still pending (from this or an earlier transaction).
                if schedule.reason != nil || actions.contains(where: { if case .pollNow = $0 { true } else { false } }) { continue }
                let next = scheduled(cadence)
                // Only ever later: a hint must not bring a poll forward either.
                if let next, let current = schedule.next, next.storageMillis <= current { continue }
                schedule = (next?.storageMillis, nil)
            case .schedulePoll(let cadence):
                // An urgent poll already requested in this transaction stays first.
                if actions.contains(where: { if case .pollNow = $0 { true } else { false } }) { continue }
                schedule = (scheduled(cadence)?.storageMillis, nil)
            case .openAnalyticsJob(let generation):
                try db.execute(
                    sql: """
                        INSERT INTO analytics_jobs (book_uuid, generation, state, attempts, due_at, created_at)
                        VALUES (?, ?, 'pending', 0, ?, ?)
                        """,
                    arguments: [key, generation, nowMillis, nowMillis])
            case .supersedeAnalyticsJob(let generation):
                try Self.setJobState(db, key, generation, .superseded, now: nowMillis)
            case .expediteAnalyticsJob(let generation):
                try db.execute(
                    sql: "UPDATE analytics_jobs SET due_at = ? WHERE book_uuid = ? AND generation = ? AND state = 'pending'",
                    arguments: [nowMillis, key, generation])
            case .retryAnalyticsJob(let generation, _):
                let due = (options.retryAt ?? now).storageMillis
                try db.execute(
                    sql: """
                        UPDATE analytics_jobs SET state = 'pending', due_at = ?, lease_owner = NULL, lease_expires_at = NULL
                        WHERE book_uuid = ? AND generation = ? AND state IN ('pending', 'running')
                        """,
                    arguments: [due, key, generation])
            case .rearmAnalyticsJob(let generation):
                try db.execute(
                    sql: """
                        UPDATE analytics_jobs SET state = 'pending', attempts = 0, due_at = ?, last_error = NULL,
                            lease_owner = NULL, lease_expires_at = NULL
                        WHERE book_uuid = ? AND generation = ?
                        """,
                    arguments: [nowMillis, key, generation])
            case .completeAnalyticsJob(let generation):
                try Self.setJobState(db, key, generation, .complete, now: nowMillis)
            case .failAnalyticsJob(let generation, let reason):
                try db.execute(
                    sql: """
                        UPDATE analytics_jobs SET state = 'failed', last_error = ?, completed_at = ?,
                            lease_owner = NULL, lease_expires_at = NULL
                        WHERE book_uuid = ? AND generation = ?
                        """,
                    arguments: [reason, nowMillis, key, generation])
            case .notifyRetrieved(let generation):
                try db.execute(
                    sql: "INSERT INTO notifications (book_uuid, generation, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    arguments: [key, generation, nowMillis])
            case .warn, .stopWatching, .webhookCoverage:
                break  // carried out by the caller (logger) or above
            }
        }
        try Self.writeBook(db, machine, created: created, next: schedule.next, reason: schedule.reason, now: nowMillis)
        return schedule.next.map(Date.init(storageMillis:))
    }

    static func setJobState(_ db: Database, _ key: String, _ generation: Int, _ state: AnalyticsJobState, now: Int64)
        throws
    {
        let finalStates = "('complete', 'failed', 'superseded')"
        try db.execute(
            sql: """
                UPDATE analytics_jobs SET state = ?, completed_at = ?, lease_owner = NULL, lease_expires_at = NULL
                WHERE book_uuid = ? AND generation = ? AND state NOT IN \(finalStates)
                """,
            arguments: [state.rawValue, now, key, generation])
    }

    static func writeBook(_ db: Database, _ m: BookMachine, created: Bool, next: Int64?, reason: String?, now: Int64)
        throws
    {
        let key = m.uuid.rawValue
        try db.execute(
            sql: """
                INSERT INTO books (uuid, pk, state, generation, last_opened_generation, book_status, failure_reason,
                    last_webhook_at, last_polled_at, finished_at, next_poll_at, poll_reason, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(uuid) DO UPDATE SET
                    pk = excluded.pk, state = excluded.state, generation = excluded.generation,
                    last_opened_generation = excluded.last_opened_generation, book_status = excluded.book_status,
                    failure_reason = excluded.failure_reason, last_webhook_at = excluded.last_webhook_at,
                    last_polled_at = excluded.last_polled_at, finished_at = excluded.finished_at,
                    next_poll_at = excluded.next_poll_at, poll_reason = excluded.poll_reason,
                    updated_at = excluded.updated_at
                """,
            arguments: [
                key, m.pk, m.phase.rawValue, m.generation, m.lastOpenedGeneration, m.bookStatus?.rawValue,
                m.failureReason, m.lastWebhookAt?.storageMillis, m.lastSnapshotAt?.storageMillis,
                m.finishedAt?.storageMillis, next, reason, now, now,
            ])
        try db.execute(sql: "DELETE FROM documents WHERE book_uuid = ?", arguments: [key])
        let insert = try db.cachedStatement(sql: """
            INSERT INTO documents (book_uuid, position, pk, uuid, status, hint, covered, rejection_reason)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for (position, document) in m.documents.enumerated() {
            try insert.execute(arguments: [
                key, position, document.ref.pk, document.ref.uuid, document.status?.rawValue,
                document.hint?.rawValue, document.covered, document.rejectionReason,
            ])
        }
    }

    /// Reads a machine back, or nil when the Book is not tracked.
    static func loadMachine(_ db: Database, uuid: BookUUID) throws -> BookMachine? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM books WHERE uuid = ?", arguments: [uuid.rawValue])
        else { return nil }
        let documents = try Row.fetchAll(
            db, sql: "SELECT * FROM documents WHERE book_uuid = ? ORDER BY position", arguments: [uuid.rawValue])
        return try machine(from: row, documents: documents, uuid: uuid)
    }

    static func machine(from row: Row, documents: [Row], uuid: BookUUID) throws -> BookMachine {
        let stateText: String = row["state"]
        guard let phase = BookPhase(rawValue: stateText) else {
            throw StoreError(.corrupt, subject: "books.state of \(uuid)", detail: "unknown state '\(stateText)'")
        }
        let tracked = try documents.map { doc -> TrackedDocument in
            let hintText: String? = doc["hint"]
            var hint: DocumentProgress?
            if let hintText {
                guard let parsed = DocumentProgress(rawValue: hintText) else {
                    throw StoreError(.corrupt, subject: "documents.hint of \(uuid)", detail: "'\(hintText)'")
                }
                hint = parsed
            }
            return TrackedDocument(
                ref: DocumentRef(pk: doc["pk"], uuid: doc["uuid"]),
                status: (doc["status"] as String?).map(DocumentStatus.init),
                hint: hint, covered: doc["covered"], rejectionReason: doc["rejection_reason"])
        }
        return BookMachine(
            uuid: uuid, pk: row["pk"], phase: phase, generation: row["generation"],
            lastOpenedGeneration: row["last_opened_generation"],
            bookStatus: (row["book_status"] as String?).map(BookStatus.init),
            documents: tracked,
            lastWebhookAt: (row["last_webhook_at"] as Int64?).map(Date.init(storageMillis:)),
            lastSnapshotAt: (row["last_polled_at"] as Int64?).map(Date.init(storageMillis:)),
            finishedAt: (row["finished_at"] as Int64?).map(Date.init(storageMillis:)),
            failureReason: row["failure_reason"])
    }
}
