import struct Foundation.Date

/// Why a poll happens (the `reason` label of `bookwatch_polls_total`).
public enum PollReason: String, Hashable, Sendable, CaseIterable {
    case webhookHint = "webhook_hint"
    case scheduled
    case startup
    case `operator`
    /// Before retrieving analytics on a view older than twice the poll minimum while webhooks are
    /// not trusted: the Book may have reopened unseen.
    case confirm
}

/// How often a Book should be polled from now on; the scheduler turns it into a time.
public enum PollCadence: String, Hashable, Sendable {
    /// Still processing: between the configured minimum and maximum, adapted to webhook traffic.
    case active
    /// Within one to two minima: every known document is finished but nothing confirmed the Book
    /// finished yet (webhooks trusted: unless the Book's finished event comes first), or a snapshot
    /// lagged behind a fresh "finished" hint.
    case soon
    /// Finished (retrieving, complete or failed): the maximum interval, to notice a reopen (ever
    /// rarer while webhooks are trusted, since they announce a reopen).
    case retention
    /// Deleted: slow polls at about 1, 2, 4... maxima after the deletion was first seen, within
    /// the retention window (`PollSchedule.retention`), so a deletion believed during an Ocrolus
    /// incident (1401 answers for minutes) undoes itself: an answer showing the Book revives it.
    case afterGone
    /// Never again.
    case never
}

/// What the I/O layer must carry out after a transition, in order.
public enum BookAction: Hashable, Sendable {
    /// Poll the status endpoint as soon as the limiter allows (urgent).
    case pollNow(PollReason)
    /// Set the next scheduled poll according to this cadence.
    case schedulePoll(PollCadence)
    /// A webhook showed the Book alive: push the scheduled poll out by the cadence, unless an
    /// urgent poll is already pending (webhooks that keep arriving make polls rarer).
    case postponePoll(PollCadence)
    /// Bring the scheduled poll forward to this cadence when it is later (never delays one).
    /// While analytics answer "not ready", the Book is polled as if active: a 425 after VERIFIED
    /// can mean the Book reopened, and retrieving then would fetch a newer generation's analytics.
    case pollWithin(PollCadence)
    /// Insert the analytics job for this generation (unique per Book and generation).
    case openAnalyticsJob(generation: Int)
    /// The Book reopened or went away: the open job of this generation must not run.
    case supersedeAnalyticsJob(generation: Int)
    /// Analytics are announced ready: make the waiting job due now.
    case expediteAnalyticsJob(generation: Int)
    /// A status answer confirmed the generation is still finished: a job waiting for a fresh view
    /// (`JobReport.awaitingView`) becomes due now.
    case confirmAnalyticsJob(generation: Int)
    /// Back off and try the job again (425 when `notReady`, else a transient error).
    case retryAnalyticsJob(generation: Int, notReady: Bool)
    /// Re-arm a failed job on the operator's request.
    case rearmAnalyticsJob(generation: Int)
    /// Mark the job complete (its results are stored in the same transaction).
    case completeAnalyticsJob(generation: Int)
    /// Mark the job failed for good.
    case failAnalyticsJob(generation: Int, reason: String)
    /// Hand the retrieval on (hook command), with idempotency key `uuid:generation`.
    case notifyRetrieved(generation: Int)
    /// Forget the Book (untrack): stop polling, keep its stored analytics.
    case stopWatching
    /// Documents a snapshot showed newly finished: how many a webhook had announced, how many
    /// none had (the watcher's estimate of webhook loss).
    case webhookCoverage(announced: Int, missed: Int)
    /// A status answer (or a trusted body) finished the generation: whether a book-level finished
    /// event had announced it. The estimate counts this only where no document events arrive.
    case bookFinishCoverage(announced: Bool)
    /// Something odd but survivable, for the log.
    case warn(String)
}
