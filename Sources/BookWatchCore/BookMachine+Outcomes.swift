import struct Foundation.Date
import struct Foundation.TimeInterval

/// What the watcher's own calls and the operator report to the machine: an analytics job's
/// outcome, a status call refused for good, and the operator's commands. (Snapshots and webhook
/// hints, what Ocrolus says of the Book, are in BookMachine+Transitions.swift.)
extension BookMachine {
    // MARK: Analytics outcomes

    mutating func applyAnalytics(
        _ outcome: AnalyticsOutcome,
        generation outcomeGeneration: Int,
        at now: Date
    )
        -> [BookAction]
    {
        guard phase == .retrieving, outcomeGeneration == generation else {
            return [.warn("ignored analytics outcome for generation \(outcomeGeneration): book is \(phase.rawValue) in generation \(generation)")]
        }
        switch outcome {
        case .stored:
            phase = .complete
            if doubt?.kind == .refused { doubt = nil }  // a refusal of a complete Book is only a warning
            return [
                .completeAnalyticsJob(generation: generation), .notifyRetrieved(generation: generation),
                .schedulePoll(.retention),
            ]
        case .notReady:
            return [.retryAnalyticsJob(generation: generation, notReady: true), .pollWithin(.active)]
        case .transientError:
            return [.retryAnalyticsJob(generation: generation, notReady: false), .pollWithin(.active)]
        case .permanentError(let reason):
            phase = .failed
            failureReason = reason
            if doubt?.kind == .refused { doubt = nil }
            return [.failAnalyticsJob(generation: generation, reason: reason), .schedulePoll(.retention)]
        }
    }

    // MARK: Refused polls

    /// The status endpoint refused the Book for good: `failed` with the reason, no more polls (a
    /// refused call is not worth repeating); `retry` or a webhook naming a new document looks again.
    /// Only when a second refusal, asked at least `gap` after the first, agrees: one odd answer (a
    /// permission flapping, a stray code inside a 200) must not end the watch of a Book still
    /// processing; the first is a doubt and a poll soon, and any answer showing the Book clears it.
    /// A complete Book stays complete and keeps its retention polls: it has nothing to retry, and
    /// one refusal must not end the watch for a reopen (found by the chaos search, seed 46: the
    /// reopen after a lifted refusal was never retrieved). Retention polls are few and end with the
    /// retention window, so a refusal that lasts costs little.
    mutating func applyRefusal(_ reason: String, asOf: Date, gap: TimeInterval) -> [BookAction] {
        switch phase {
        case .deleted:
            return [.schedulePoll(.afterGone)]
        case .complete:
            // Its analytics are stored: keep them, and keep watching for a reopen.
            return [.warn("status refused after completion: \(reason)"), .schedulePoll(.retention)]
        case .failed where !failedWithoutJob:
            // Failed with a job (the analytics refused it): the same, its reason kept.
            return [.warn("status refused: \(reason)"), .schedulePoll(.retention)]
        case .tracking, .processing, .retrieving:
            // Another doubt (gone, a reopen) is not replaced: alternating odd answers would
            // otherwise never confirm either; this one only asks again soon.
            if let doubt, doubt.kind != .refused { return [.warn("status refused: \(reason)"), .schedulePoll(.soon)] }
            guard let doubt else {
                doubt = Doubt(kind: .refused, since: asOf)
                return [.warn("status refused: \(reason); a second answer confirms"), .schedulePoll(.soon)]
            }
            guard asOf.timeIntervalSince(doubt.since) >= gap else { return [.schedulePoll(.soon)] }
            self.doubt = nil
            let retrieving = phase == .retrieving
            phase = .failed
            failureReason = reason
            return (retrieving ? [.failAnalyticsJob(generation: generation, reason: reason)] : []) + [.schedulePoll(.never)]
        case .failed:
            failureReason = reason
            return [.schedulePoll(.never)]
        }
    }

    // MARK: Operator commands

    mutating func applyCommand(_ command: OperatorCommand) -> [BookAction] {
        switch command {
        case .track(let source):
            if phase == .deleted {
                // Tracked again by the operator: look now. The Book stays deleted until an answer
                // shows it; then the revival decides the generation (complete with the same
                // documents: the same one, nothing fetched again). The old deletion's doubt goes:
                // a gone answer now is a fresh one, not a confirmation of it.
                doubt = nil
                return source == .operator ? [.pollNow(.operator)] : []
            }
            // Only a Book never seen yet: tracked "new" after a poll, it may hold older documents.
            if source == .created && lastSnapshotAt == nil && phase == .tracking { watchedSinceCreation = true }
            switch source {
            case .operator: return [.pollNow(.operator)]
            case .webhook, .created: return phase == .tracking ? [.schedulePoll(.active)] : []
            }
        case .untrack:
            // The state is kept (a tombstone): `track` later resumes at this generation, with its
            // job if one is open (no job of an untracked Book is claimed meanwhile), so nothing
            // is retrieved twice. A doubt is forgotten: the next answers start afresh.
            doubt = nil
            return [.stopWatching]
        case .retry:
            guard phase == .failed else {
                return [.warn("nothing to retry: book is \(phase.rawValue)")]
            }
            failureReason = nil
            if doubt?.kind == .refused { doubt = nil }  // a refusal after the retry starts afresh
            if failedWithoutJob {
                // A refused status poll, no job to re-arm: look at the Book again.
                phase = confirmedDocuments.isEmpty ? .tracking : .processing
                return [.pollNow(.operator)]
            }
            phase = .retrieving
            return [.rearmAnalyticsJob(generation: generation), .pollWithin(.active)]
        }
    }
}
