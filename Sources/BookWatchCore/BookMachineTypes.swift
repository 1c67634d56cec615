import struct Foundation.Date

/// The states of a watched Book (the `state` field of `status --json`).
public enum BookPhase: String, Hashable, Sendable, CaseIterable, Comparable {
    /// Tracked, nothing known yet.
    case tracking
    /// Some Document not finished.
    case processing
    /// Every Document finished; an analytics job is open for the current generation.
    case retrieving
    /// Analytics for the current generation are stored.
    case complete
    /// Analytics gave up: book gone, no permission, or attempts exhausted.
    case failed
    /// Ocrolus says the Book is gone.
    case deleted

    /// Phases in the order a Book normally passes them (`ordinal`).
    public static func < (lhs: BookPhase, rhs: BookPhase) -> Bool {
        lhs.ordinal < rhs.ordinal
    }

    /// Lifecycle order, used to sort tables and totals.
    public var ordinal: Int {
        switch self {
        case .tracking: 0
        case .processing: 1
        case .retrieving: 2
        case .complete: 3
        case .failed: 4
        case .deleted: 5
        }
    }
}

/// A Document as the machine knows it: the last snapshot's status plus any webhook hint since.
public struct TrackedDocument: Hashable, Sendable {
    /// Which document (pk, uuid or both).
    public var ref: DocumentRef
    /// The status in the last snapshot; nil when only a webhook has mentioned the document.
    public var status: DocumentStatus?
    /// What webhooks since the last snapshot implied; cleared by every snapshot (the snapshot wins).
    public var hint: DocumentProgress?
    /// Whether the document belonged to the Book when its current generation finished.
    public var covered: Bool
    /// Why Ocrolus rejected the document, when it did.
    public var rejectionReason: String?

    /// A document with its last known status.
    public init(
        ref: DocumentRef,
        status: DocumentStatus?,
        hint: DocumentProgress? = nil,
        covered: Bool = false,
        rejectionReason: String? = nil
    ) {
        self.ref = ref
        self.status = status
        self.hint = hint
        self.covered = covered
        self.rejectionReason = rejectionReason
    }

    /// The best current guess: the hint when there is one, else the snapshot's status.
    public var effectiveProgress: DocumentProgress {
        hint ?? status?.progress ?? .inProgress
    }

    /// Known from a snapshot (hint-only documents are not counted as part of the Book yet).
    public var isConfirmed: Bool { status != nil }
}

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
    /// Never again (deleted).
    case never
}

/// Where the Book came from when it is tracked.
public enum TrackSource: String, Hashable, Sendable {
    /// `bookwatch track`: look at once.
    case `operator`
    /// A webhook named an unknown Book and auto-track is on: wait for hints or the schedule.
    case webhook
    /// `bookwatch track --new`: the lender has just created the Book, so there is nothing to see
    /// yet: wait for hints or the schedule instead of spending a call now.
    case created
}

/// What one analytics attempt for a generation came to.
public enum AnalyticsOutcome: Hashable, Sendable {
    /// Every configured endpoint's result is stored.
    case stored
    /// HTTP 425 / code 9004: not yet; not a failure and not a retrieval.
    case notReady
    /// 5xx, 429, timeout, connection error: try again later.
    case transientError(String)
    /// Book gone, no permission, or attempts exhausted: give up with this reason.
    case permanentError(String)
}

/// An operator's (or auto-track's) command.
public enum OperatorCommand: Hashable, Sendable {
    case track(TrackSource)
    case untrack
    case retry
}

/// Everything that can happen to a Book, each with what its transition needs beyond the machine
/// (when an answer was asked, the inbox row of a hint, the claim of an analytics outcome): the
/// machine reads the first value, the store the second.
public enum BookInput: Hashable, Sendable {
    /// An authoritative status read.
    case snapshot(BookSnapshot, PollAnswer = PollAnswer())
    /// A webhook about this Book: a hint, never the truth.
    case webhook(WebhookHint, HintDelivery = HintDelivery())
    /// The outcome of an analytics attempt for a generation.
    case analytics(generation: Int, AnalyticsOutcome, JobReport = JobReport())
    case command(OperatorCommand)
    /// The status endpoint refused this Book for good (403/2102, another 4xx with an Ocrolus code):
    /// the Book is marked `failed` with the reason; `retry` watches it again.
    case pollRefused(String, PollAnswer = PollAnswer())
}

/// A doubt raised by one status answer that only a second answer may confirm: one odd answer must
/// never delete a Book or reopen a finished generation.
public struct Doubt: Hashable, Sendable {
    /// What the first answer claimed.
    public enum Kind: String, Hashable, Sendable {
        /// Ocrolus said the Book is gone (code 1401 or `DELETED`).
        case gone
        /// A finished Document showed unfinished again, with no new Document in the answer.
        case reopen
    }
    /// What the odd answer claimed.
    public var kind: Kind
    /// When the request of the answer that raised it was sent.
    public var since: Date

    /// A doubt raised by an answer asked at `since`.
    public init(kind: Kind, since: Date) {
        self.kind = kind
        self.since = since
    }
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
    /// Something odd but survivable, for the log.
    case warn(String)
}
