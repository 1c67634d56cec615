import BookWatchCore
import Foundation

/// A `books` row as either store reads it (times in storage milliseconds). Turning rows into
/// machines happens here once, with the same checks for values a store cannot read back.
package struct StoredBook: Sendable {
    /// `books.uuid`.
    package var uuid: String
    /// `books.pk`.
    package var pk: Int?
    /// `books.state`.
    package var state: String
    /// `books.generation`.
    package var generation: Int
    /// `books.last_opened_generation`.
    package var lastOpenedGeneration: Int
    /// `books.book_status`.
    package var bookStatus: String?
    /// `books.failure_reason`.
    package var failureReason: String?
    /// `books.last_webhook_at`.
    package var lastWebhookAt: Int64?
    /// `books.last_polled_at`.
    package var lastPolledAt: Int64?
    /// `books.finished_at`.
    package var finishedAt: Int64?
    /// `books.watched_since_creation`.
    package var watchedSinceCreation: Bool
    /// Set on a tombstone (an untracked Book's row).
    package var untrackedAt: Int64?
    /// `books.doubt_kind`.
    package var doubtKind: String?
    /// `books.doubt_since`.
    package var doubtSince: Int64?
    /// `books.finish_evidence`: NULL nothing known, 0 announced, a positive value the storage
    /// time since which a finish is shown unannounced (`BookMachine.FinishEvidence`).
    package var finishEvidence: Int64?
    /// The poll columns.
    package var schedule: StoredSchedule

    /// A row.
    package init(
        uuid: String,
        pk: Int?,
        state: String,
        generation: Int,
        lastOpenedGeneration: Int,
        bookStatus: String?,
        failureReason: String?,
        lastWebhookAt: Int64?,
        lastPolledAt: Int64?,
        finishedAt: Int64?,
        watchedSinceCreation: Bool,
        doubtKind: String? = nil,
        doubtSince: Int64? = nil,
        finishEvidence: Int64? = nil,
        untrackedAt: Int64? = nil,
        schedule: StoredSchedule
    ) {
        self.finishEvidence = finishEvidence
        self.untrackedAt = untrackedAt
        self.doubtKind = doubtKind
        self.doubtSince = doubtSince
        self.watchedSinceCreation = watchedSinceCreation
        self.uuid = uuid
        self.pk = pk
        self.state = state
        self.generation = generation
        self.lastOpenedGeneration = lastOpenedGeneration
        self.bookStatus = bookStatus
        self.failureReason = failureReason
        self.lastWebhookAt = lastWebhookAt
        self.lastPolledAt = lastPolledAt
        self.finishedAt = finishedAt
        self.schedule = schedule
    }

    /// The machine this row stores, with its documents in position order.
    package func machine(documents: [StoredDocument]) throws -> BookMachine {
        guard let bookUUID = BookUUID(uuid) else {
            throw StoreError(.corrupt, subject: "books.uuid", detail: "'\(uuid)' is not a uuid")
        }
        guard let phase = BookPhase(rawValue: state) else {
            throw StoreError(.corrupt, subject: "books.state of \(uuid)", detail: "unknown state '\(state)'")
        }
        var doubt: Doubt?
        // A doubt this build does not know (written by a newer one, before a rollback) is no
        // doubt: the next answers start afresh, rather than every transition of the Book failing.
        if let doubtKind, let kind = Doubt.Kind(rawValue: doubtKind) {
            guard let doubtSince else {
                throw StoreError(.corrupt, subject: "books.doubt_since of \(uuid)", detail: "missing for doubt '\(doubtKind)'")
            }
            doubt = Doubt(kind: kind, since: Date(storageMillis: doubtSince))
        }
        return BookMachine(
            uuid: bookUUID,
            pk: pk,
            phase: phase,
            generation: generation,
            lastOpenedGeneration: lastOpenedGeneration,
            bookStatus: bookStatus.map(BookStatus.init),
            documents: try documents.map { try $0.tracked(book: uuid) },
            lastWebhookAt: lastWebhookAt.map(Date.init(storageMillis:)),
            lastSnapshotAt: lastPolledAt.map(Date.init(storageMillis:)),
            finishedAt: finishedAt.map(Date.init(storageMillis:)),
            failureReason: failureReason,
            watchedSinceCreation: watchedSinceCreation,
            doubt: doubt,
            finishEvidence: finishEvidence.map { $0 == 0 ? .announced : .unannounced(since: Date(storageMillis: $0)) }
        )
    }

    /// `books.finish_evidence` of a machine's evidence (an unannounced time of 0 or less, which
    /// no real clock gives, is kept as 1 so it never reads as announced).
    package static func storedEvidence(_ evidence: BookMachine.FinishEvidence?) -> Int64? {
        switch evidence {
        case nil: nil
        case .announced: 0
        case .unannounced(let since): max(1, since.storageMillis)
        }
    }

    /// The record `status` shows.
    package func record(documents: [StoredDocument], job: StoredJob?, label: String? = nil, name: String? = nil) throws -> BookRecord {
        BookRecord(
            machine: try machine(documents: documents),
            nextPollAt: schedule.next.map(Date.init(storageMillis:)),
            pendingPollReason: schedule.reason.flatMap(PollReason.init(rawValue:)),
            analytics: try job?.summary(),
            label: label,
            name: name
        )
    }
}

/// The `books` columns as both stores write them, in the order of their values, and the upsert
/// clause derived from them (every column but the key and the creation time is replaced).
package enum BooksTable {
    /// What `tightenPolls` may move, for either store: unclaimed, non-urgent polls of Books still
    /// processing or finished, later than the smaller of the two spreads (storage milliseconds);
    /// `PollSchedule.tightened` decides each one.
    package static func tighteningLimits(
        now: Date,
        schedule: PollSchedule,
        silentInterval: TimeInterval?,
        finishedInterval: TimeInterval?
    ) -> (active: Int64, finished: Int64) {
        (
            now.addingTimeInterval(schedule.tighteningSpread(finished: false, silentInterval: silentInterval)).storageMillis,
            now.addingTimeInterval(schedule.tighteningSpread(finished: true, finishedInterval: finishedInterval)).storageMillis
        )
    }
    /// The candidates' condition, the two limits bound: exactly the polls `PollSchedule.tightened`
    /// moves within `scope`, so no other row is read or locked.
    package static func tighteningCondition(_ limits: (active: Int64, finished: Int64), scope: TighteningScope) -> SQLQuery {
        let free: SQLQuery = "poll_reason IS NULL AND poll_claimed_at IS NULL AND "
        switch scope {
        case .tracking:
            // Only a first poll as scheduled: never one backing off after failures or a doubt's.
            return free + "state = \(BookPhase.tracking.rawValue) AND next_poll_at > \(limits.active)"
                + " AND last_polled_at IS NULL AND poll_failures = 0 AND doubt_kind IS NULL"
        case .processing:
            return free + "state IN \(unescaped: activeStates) AND next_poll_at > \(limits.active)"
        case .all:
            return free + "((state IN \(unescaped: activeStates) AND next_poll_at > \(limits.active))"
                + " OR (state IN \(unescaped: finishedStates) AND next_poll_at > \(limits.finished)))"
        }
    }
    /// The phases whose polls watch for progress, and the finished ones whose polls watch for a reopen.
    package static let activePhases: [BookPhase] = [.tracking, .processing]
    /// Phases whose polls watch for a reopen.
    package static let finishedPhases: [BookPhase] = [.retrieving, .complete, .failed]
    static let activeStates = sqlList(activePhases)
    static let finishedStates = sqlList(finishedPhases)
    static func sqlList(_ phases: [BookPhase]) -> String { "(" + phases.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")" }

    /// The columns a tightening reads (`tighteningCandidate(_:)`).
    package static let tighteningColumns = "uuid, state, next_poll_at, last_polled_at, last_webhook_at, created_at"

    /// A row of `tighteningColumns` as the policy sees it: the Book heard of last by its last
    /// status answer or webhook, else by its tracking.
    package static func tighteningCandidate(_ row: any SQLRow) throws -> (uuid: String, candidate: TighteningCandidate) {
        let heard = try [row.optionalInt64("last_polled_at"), row.optionalInt64("last_webhook_at")].compactMap { $0 }.max()
        let candidate = TighteningCandidate(
            next: Date(storageMillis: try row.int64("next_poll_at")),
            finished: !activePhases.map(\.rawValue).contains(try row.string("state")),
            lastHeard: Date(storageMillis: try heard ?? row.int64("created_at"))
        )
        return (try row.string("uuid"), candidate)
    }

    /// The new times of the candidates (`PollSchedule.tightened`: given in uuid order, so ties
    /// between equally stale Books go by uuid).
    package static func tightened(
        _ candidates: [(uuid: String, candidate: TighteningCandidate)],
        now: Date,
        schedule: PollSchedule,
        silentInterval: TimeInterval?,
        finishedInterval: TimeInterval?,
        random: () -> Double
    )
        -> [(uuid: String, next: Int64)]
    {
        let rows = candidates.sorted { $0.uuid < $1.uuid }
        let moved = schedule.tightened(
            rows.map(\.candidate),
            now: now,
            silentInterval: silentInterval,
            finishedInterval: finishedInterval,
            unitRandom: random
        )
        return zip(rows, moved).compactMap { row, next in next.map { (row.uuid, $0.storageMillis) } }
    }
    /// The columns, in the order of their values.
    package static let columns = [
        "uuid", "pk", "state", "generation", "last_opened_generation", "book_status", "failure_reason",
        "last_webhook_at", "last_polled_at", "finished_at", "next_poll_at", "poll_reason", "poll_claimed_at", "snapshot_as_of",
        "watched_since_creation", "doubt_kind", "doubt_since", "poll_failures", "untracked_at", "created_at", "updated_at",
        "finish_evidence",
    ]
    /// The columns, comma-separated.
    package static let columnList = columns.joined(separator: ", ")
    /// The upsert clause: every column but the key and the creation time replaced.
    package static let upsert =
        "ON CONFLICT (uuid) DO UPDATE SET "
        + columns.filter { $0 != "uuid" && $0 != "created_at" }.map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
}

/// Turns `state, count` rows into totals, refusing an unknown state.
package func bookTotals(_ rows: [(state: String, count: Int)]) throws -> [BookPhase: Int] {
    var totals: [BookPhase: Int] = [:]
    for (state, count) in rows {
        guard let phase = BookPhase(rawValue: state) else {
            throw StoreError(.corrupt, subject: "books.state", detail: "unknown state '\(state)'")
        }
        totals[phase] = count
    }
    return totals
}
