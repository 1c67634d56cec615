import BookWatchCore
import Foundation

/// A Book's poll schedule as stored: when, why (urgent reasons only), and the claim of a poll in
/// flight. Times are storage milliseconds.
package struct StoredSchedule: Sendable, Equatable {
    /// When the next poll is due (`books.next_poll_at`), nil for none.
    package var next: Int64?
    /// Why, for an urgent poll (`books.poll_reason`).
    package var reason: String?
    /// Set while a replica's status call for this Book is in flight (`DuePoll.claimedAt`).
    package var claimedAt: Int64?
    /// The `PollAnswer.takenAt` of the newest snapshot applied.
    package var snapshotAsOf: Int64?
    /// Status polls that failed in a row (`books.poll_failures`); an answer resets it.
    package var failures: Int

    /// A schedule.
    package init(next: Int64? = nil, reason: String? = nil, claimedAt: Int64? = nil, snapshotAsOf: Int64? = nil, failures: Int = 0) {
        self.failures = failures
        self.next = next
        self.reason = reason
        self.claimedAt = claimedAt
        self.snapshotAsOf = snapshotAsOf
    }

    /// No poll, no claim, no snapshot yet.
    package static let none = StoredSchedule()
}

/// A change to one analytics job row, as a transition's actions ask for it.
package enum JobChange: Sendable, Equatable {
    case open
    /// Complete or superseded: a final state, set only on a job not already final.
    case finish(AnalyticsJobState)
    case expedite
    /// A status answer asked at `asOf` confirmed the finish: a job waiting for a view since before
    /// then becomes due now.
    case confirmed(asOf: Int64)
    /// Back to pending, due at `dueAt`; `countsError`: a real error (not a 425 or a wait for a
    /// view); `awaitingView`: released early by `confirmed`; `error`: a real error's message,
    /// kept as the job's last error.
    case retry(dueAt: Int64, countsError: Bool, awaitingView: Bool, error: String? = nil)
    /// The operator tracked the Book again: back to pending, waiting for the track's view (due at
    /// `dueAt` at the latest), its opening moved later by the `untrackedFor` milliseconds the Book
    /// was untracked: that time was not spent waiting for analytics, and counting it gave the job
    /// up at its first claim (chaos seed 4626); the time before and after still counts.
    case resume(dueAt: Int64, untrackedFor: Int64)
    case rearm
    case fail(reason: String)
}

/// What one transition writes, decided without a database so both stores carry out the same
/// decisions (each only translates the plan into its SQL).
package struct TransitionPlan: Sendable {
    /// Untracked: the row stays as a tombstone (`books.untracked_at`) with no poll, so webhooks
    /// never track the Book again and a later `track` resumes at its generation and documents.
    package var untrack = false
    /// The job rows to change, in order.
    package var jobs: [(generation: Int, change: JobChange)] = []
    /// Generations whose retrieval is handed on.
    package var notify: [Int] = []
    /// The Book's poll schedule after the transition.
    package var schedule = StoredSchedule.none
    /// The claim an analytics outcome was made under: carried out only while it still holds the
    /// job (else the store throws `.lostClaim` and rolls the transition back).
    package var fence: (generation: Int, claim: JobClaim)?
    /// The Book's name a status answer gave (kept in `book_labels` for `status`).
    package var bookName: String?
    /// The name is an authenticated webhook's: it names a Book that has none yet, and never
    /// replaces a status answer's (a delivery can be older than the last answer).
    package var bookNameFillsOnly = false

    /// True when `input` may create a Book's row: the operator's `track`, or a webhook hint with
    /// `HintDelivery.trackUnknown` (auto-track).
    package static func mayCreate(_ input: BookInput) -> Bool {
        switch input {
        case .command(.track): true
        case .webhook(_, let delivery): delivery.trackUnknown
        default: false
        }
    }

    /// What `input` becomes for a Book whose row is a tombstone (untracked), or nil when it may not
    /// reach it: only the operator's `track` brings it back (`--new` too, as a plain track: the
    /// Book is not new, it is looked at again); webhooks, answers and auto-tracking do not.
    package static func resuming(_ input: BookInput) -> BookInput? {
        switch input {
        case .command(.track(.operator)), .command(.track(.created)): .command(.track(.operator))
        default: nil
        }
    }

    /// Feeds `input` to `machine` and decides the rows to write, for either store. A snapshot
    /// older than one already applied is dropped instead (no actions; only the claim it holds
    /// ends), so a slower replica cannot roll the Book back. `stored` is the Book's schedule before
    /// the transition (`.none` for a new Book); `draw` is the jitter in `0..<1`.
    ///
    /// `resuming`: the Book's row was a tombstone and `track` brings it back. A job it had open
    /// waits for the answer to the track's poll (webhooks were not applied while untracked, so a
    /// reopen may have gone unseen): that answer confirms the job or supersedes it.
    package static func decide(
        _ input: BookInput,
        machine: inout BookMachine,
        stored: StoredSchedule,
        options: TransitionOptions,
        now: Date,
        draw: Double,
        schedule pollSchedule: PollSchedule,
        resuming: Bool = false,
        untrackedAt: Int64? = nil,
        created: Bool = false
    ) -> (actions: [BookAction], plan: TransitionPlan) {
        // A hint about a Book with no row yet (auto-track): the Book is tracked (`track(.webhook)`)
        // and the hint applied in one decision, carried out in one transaction (a crash between
        // the two cannot leave the Book tracked without its hint).
        if created, case .webhook = input {
            let (tracking, tracked) = decide(
                .command(.track(.webhook)),
                machine: &machine,
                stored: stored,
                options: options,
                now: now,
                draw: draw,
                schedule: pollSchedule
            )
            var (applying, plan) = decide(
                input,
                machine: &machine,
                stored: tracked.schedule,
                options: options,
                now: now,
                draw: draw,
                schedule: pollSchedule
            )
            plan.jobs = tracked.jobs + plan.jobs
            plan.notify = tracked.notify + plan.notify
            plan.untrack = plan.untrack || tracked.untrack
            return (tracking + applying, plan)
        }
        // A status answer (or refusal) asked before the answer already applied is stale.
        if input.isStatusAnswer, let taken = input.pollAnswer.takenAt?.storageMillis, let asOf = stored.snapshotAsOf, taken < asOf {
            var plan = TransitionPlan()
            plan.schedule = stored
            if let claim = input.pollAnswer.claim?.storageMillis, stored.claimedAt == claim { plan.schedule.claimedAt = nil }
            return ([], plan)
        }
        let actions = machine.apply(
            input,
            at: now,
            trustingWebhooks: options.webhooksTrusted,
            answeredAsOf: input.pollAnswer.takenAt,
            confirmationGap: pollSchedule.minimum
        )
        var plan = make(
            machine: machine,
            actions: actions,
            input: input,
            stored: stored,
            options: options,
            now: now,
            draw: draw,
            schedule: pollSchedule
        )
        if case .analytics(let generation, _, let report) = input, let claim = report.claim { plan.fence = (generation, claim) }
        if case .snapshot(.present, let answer) = input, let name = answer.bookName, !name.isEmpty, !plan.untrack { plan.bookName = name }
        if case .webhook(let hint, _) = input, hint.authenticated, let name = hint.bookName, !name.isEmpty, !plan.untrack {
            plan.bookName = name
            plan.bookNameFillsOnly = true
        }
        if resuming && machine.phase == .retrieving {
            let fallback = now.addingTimeInterval(pollSchedule.confirmFreshness).storageMillis
            let untrackedFor = max(0, now.storageMillis - (untrackedAt ?? now.storageMillis))
            plan.jobs.append((machine.generation, .resume(dueAt: fallback, untrackedFor: untrackedFor)))
        }
        switch input {
        case .snapshot, .pollRefused: plan.schedule.failures = 0  // the endpoint answered
        default: break
        }
        return (actions, plan)
    }

    /// Decides the rows of `actions`.
    static func make(
        machine: BookMachine,
        actions: [BookAction],
        input: BookInput,
        stored: StoredSchedule,
        options: TransitionOptions,
        now: Date,
        draw: Double,
        schedule pollSchedule: PollSchedule
    ) -> TransitionPlan {
        var plan = TransitionPlan()
        let answer = input.pollAnswer
        let report = input.jobReport
        let taken = answer.takenAt?.storageMillis
        let claim = answer.claim?.storageMillis
        // This transition carries the snapshot of the poll that holds the claim: the claim ends.
        let ownClaim = claim != nil && stored.claimedAt == claim
        // An urgent poll was requested after this snapshot's poll was claimed: it stays due.
        let laterRequest = claim != nil && !ownClaim && stored.reason != nil
        plan.schedule = stored
        if ownClaim { plan.schedule.claimedAt = nil }
        if let taken { plan.schedule.snapshotAsOf = max(taken, stored.snapshotAsOf ?? taken) }

        for action in actions {
            switch action {
            case .openAnalyticsJob(let generation): plan.jobs.append((generation, .open))
            case .supersedeAnalyticsJob(let generation): plan.jobs.append((generation, .finish(.superseded)))
            case .completeAnalyticsJob(let generation): plan.jobs.append((generation, .finish(.complete)))
            case .expediteAnalyticsJob(let generation): plan.jobs.append((generation, .expedite))
            case .confirmAnalyticsJob(let generation):
                plan.jobs.append((generation, .confirmed(asOf: (answer.takenAt ?? now).storageMillis)))
            case .retryAnalyticsJob(let generation, let notReady):
                plan.jobs.append(
                    (
                        generation,
                        .retry(
                            dueAt: (report.retryAt ?? now).storageMillis,
                            countsError: !notReady,
                            awaitingView: report.awaitingView,
                            error: input.transientErrorMessage
                        )
                    )
                )
            case .rearmAnalyticsJob(let generation): plan.jobs.append((generation, .rearm))
            case .failAnalyticsJob(let generation, let reason): plan.jobs.append((generation, .fail(reason: reason)))
            case .notifyRetrieved(let generation): plan.notify.append(generation)
            case .stopWatching: plan.untrack = true
            case .pollNow, .schedulePoll, .postponePoll, .pollWithin, .warn, .webhookCoverage, .bookFinishCoverage: break
            }
        }
        if plan.untrack {
            // Only supersessions survive an untrack; the schedule goes, the row stays as a tombstone.
            plan.jobs = plan.jobs.filter { $0.change == .finish(.superseded) }
            plan.notify = []
            plan.schedule = StoredSchedule(snapshotAsOf: stored.snapshotAsOf)
            return plan
        }

        // The pending poll: the policy decides (`PollSchedule.apply`), the plan stores it.
        let slot = pollSchedule.apply(
            actions,
            to: PollSlot(
                next: plan.schedule.next.map(Date.init(storageMillis:)),
                reason: plan.schedule.reason,
                claimed: plan.schedule.claimedAt != nil
            ),
            laterRequest: laterRequest,
            context: PollContext(
                now: now,
                lastWebhookAt: machine.lastWebhookAt,
                finishedAt: machine.finishedAt,
                webhooksSilent: options.webhooksSilent,
                webhooksTrusted: options.webhooksTrusted,
                unitRandom: draw,
                silentInterval: options.silentInterval,
                finishedInterval: options.finishedInterval,
                goneSince: machine.phase == .deleted && machine.doubt?.kind == .gone ? machine.doubt?.since : nil
            )
        )
        plan.schedule.next = slot.next?.storageMillis
        plan.schedule.reason = slot.reason
        if !slot.claimed { plan.schedule.claimedAt = nil }
        return plan
    }
}
