import BookWatchCore
import Foundation

/// A Book's poll schedule as stored: when, why (urgent reasons only), and the claim of a poll in
/// flight. Times are storage milliseconds.
package struct StoredSchedule: Sendable, Equatable {
    package var next: Int64?
    package var reason: String?
    /// Set while a replica's status call for this Book is in flight (`DuePoll.claimedAt`).
    package var claimedAt: Int64?
    /// The `snapshotTakenAt` of the newest snapshot applied.
    package var snapshotAsOf: Int64?

    package init(next: Int64? = nil, reason: String? = nil, claimedAt: Int64? = nil, snapshotAsOf: Int64? = nil) {
        self.next = next
        self.reason = reason
        self.claimedAt = claimedAt
        self.snapshotAsOf = snapshotAsOf
    }

    package static let none = StoredSchedule()
}

/// A change to one analytics job row, as a transition's actions ask for it.
package enum JobChange: Sendable, Equatable {
    case open
    /// Complete or superseded: a final state, set only on a job not already final.
    case finish(AnalyticsJobState)
    case expedite
    case retry(dueAt: Int64)
    case rearm
    case fail(reason: String)
}

/// What one transition writes, decided without a database so both stores carry out the same
/// decisions (each only translates the plan into its SQL).
package struct TransitionPlan: Sendable {
    package var deleteBook = false
    package var jobs: [(generation: Int, change: JobChange)] = []
    package var notify: [Int] = []
    package var schedule = StoredSchedule.none

    /// Feeds `input` to `machine` and decides the rows to write, for either store. A snapshot
    /// older than one already applied is dropped instead (no actions; only the claim it holds
    /// ends), so a slower replica cannot roll the Book back. `stored` is the Book's schedule before
    /// the transition (`.none` for a new Book); `draw` is the jitter in `0..<1`.
    package static func decide(
        _ input: BookInput, machine: inout BookMachine, stored: StoredSchedule, options: TransitionOptions, now: Date, draw: Double,
        schedule pollSchedule: PollSchedule
    ) -> (actions: [BookAction], plan: TransitionPlan) {
        if case .snapshot = input, let taken = options.snapshotTakenAt?.storageMillis, let asOf = stored.snapshotAsOf, taken < asOf {
            var plan = TransitionPlan()
            plan.schedule = stored
            if let claim = options.pollClaim?.storageMillis, stored.claimedAt == claim { plan.schedule.claimedAt = nil }
            return ([], plan)
        }
        let actions = machine.apply(input, at: now, trustingWebhooks: options.webhooksTrusted)
        return (actions, make(machine: machine, actions: actions, stored: stored, options: options, now: now, draw: draw,
                              schedule: pollSchedule))
    }

    /// Decides the rows of `actions`.
    static func make(
        machine: BookMachine, actions: [BookAction], stored: StoredSchedule, options: TransitionOptions, now: Date, draw: Double,
        schedule pollSchedule: PollSchedule
    ) -> TransitionPlan {
        var plan = TransitionPlan()
        let nowMillis = now.storageMillis
        let taken = options.snapshotTakenAt?.storageMillis
        let claim = options.pollClaim?.storageMillis
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
            case .retryAnalyticsJob(let generation, _):
                plan.jobs.append((generation, .retry(dueAt: (options.retryAt ?? now).storageMillis)))
            case .rearmAnalyticsJob(let generation): plan.jobs.append((generation, .rearm))
            case .failAnalyticsJob(let generation, let reason): plan.jobs.append((generation, .fail(reason: reason)))
            case .notifyRetrieved(let generation): plan.notify.append(generation)
            case .stopWatching: plan.deleteBook = true
            case .pollNow, .schedulePoll, .postponePoll, .pollWithin, .warn, .webhookCoverage: break
            }
        }
        if plan.deleteBook {
            // Only supersessions survive an untrack; the Book row and its schedule go.
            plan.jobs = plan.jobs.filter { $0.change == .finish(.superseded) }
            plan.notify = []
            return plan
        }

        let urgentNow = actions.contains { if case .pollNow = $0 { true } else { false } }
        func scheduled(_ cadence: PollCadence) -> Int64? {
            pollSchedule.nextPoll(
                cadence: cadence, lastWebhookAt: machine.lastWebhookAt, now: now, webhooksSilent: options.webhooksSilent,
                unitRandom: draw, finishedAt: machine.finishedAt, webhooksTrusted: options.webhooksTrusted)?.storageMillis
        }
        for action in actions {
            switch action {
            case .pollNow(let reason):
                plan.schedule.next = nowMillis
                plan.schedule.reason = reason.rawValue
                plan.schedule.claimedAt = nil  // a poll in flight now answers an older question
            case .postponePoll(let cadence):
                // Never delays an urgent poll still pending (from this or an earlier transaction).
                if plan.schedule.reason != nil || urgentNow { continue }
                let next = scheduled(cadence)
                // Only ever later: a hint must not bring a poll forward either.
                if let next, let current = plan.schedule.next, next <= current { continue }
                plan.schedule.next = next
                plan.schedule.reason = nil
            case .pollWithin(let cadence):
                // Only ever earlier; an urgent poll is already as early as it gets, and a poll in
                // flight (claimed) will write the schedule itself.
                if plan.schedule.reason != nil || urgentNow || plan.schedule.claimedAt != nil { continue }
                guard let next = scheduled(cadence) else { continue }
                if let current = plan.schedule.next, current <= next { continue }
                plan.schedule.next = next
            case .schedulePoll(let cadence):
                // An urgent poll requested in this transaction, or since this snapshot's poll was
                // claimed, stays first.
                if urgentNow || laterRequest { continue }
                plan.schedule.next = scheduled(cadence)
                plan.schedule.reason = nil
            default:
                continue
            }
        }
        return plan
    }
}
