import struct Foundation.Date

/// The facts of a status answer its transition needs (`BookInput.snapshot`, `.pollRefused`).
public struct PollAnswer: Hashable, Sendable {
    /// When the status request was sent: an answer older than one already applied is dropped, so
    /// a replica whose answer came earlier but committed later cannot roll a Book back (which
    /// would look like a reopen and open a generation that never was).
    public var takenAt: Date?
    /// The claim of the poll that asked (`DuePoll.claimedAt`): the answer ends it, and an urgent
    /// poll requested after the claim stays due (the answer is to an older question).
    public var claim: Date?

    /// The facts of one answer.
    public init(takenAt: Date? = nil, claim: Date? = nil) {
        self.takenAt = takenAt
        self.claim = claim
    }
}

/// Where a webhook hint comes from (`BookInput.webhook`).
public struct HintDelivery: Hashable, Sendable {
    /// The inbox row, marked processed in the same transaction; when it already is, the
    /// transition throws a duplicate error and changes nothing.
    public var inboxRow: Int64?
    /// A hint about a Book with no row tracks it first (auto-track), in the same transaction; a
    /// tombstone (an untracked Book) is never tracked this way.
    public var trackUnknown: Bool

    /// Where one hint comes from.
    public init(inboxRow: Int64? = nil, trackUnknown: Bool = false) {
        self.inboxRow = inboxRow
        self.trackUnknown = trackUnknown
    }
}

/// What a worker reports with an analytics outcome (`BookInput.analytics`).
public struct JobReport: Hashable, Sendable {
    /// The worker's claim on the job: the transition commits only while it still holds the
    /// running job (a late worker never overwrites the new owner's work).
    public var claim: JobClaim?
    /// Results written in the same transaction (the last endpoint's result commits with the
    /// job's completion).
    public var results: [AnalyticsResult]
    /// For a retry: when the job becomes due again (the worker's backoff).
    public var retryAt: Date?
    /// For `.notReady`: the job waits for a fresh status answer rather than for analytics; the
    /// next answer confirming the finish makes it due at once.
    public var awaitingView: Bool

    /// A worker's report of one outcome.
    public init(claim: JobClaim? = nil, results: [AnalyticsResult] = [], retryAt: Date? = nil, awaitingView: Bool = false) {
        self.claim = claim
        self.results = results
        self.retryAt = retryAt
        self.awaitingView = awaitingView
    }
}

/// A worker's hold on a running analytics job: its owner and the lease token of this claim.
/// Every write the worker makes for the job checks both in the same statement (a fence).
public struct JobClaim: Sendable, Hashable {
    /// The worker (host, process and a random part: never two alike).
    public var owner: String
    /// The claim's lease token: a new claim of the same job gets a new one.
    public var token: Int64

    /// A claim of `owner` with lease token `token`.
    public init(owner: String, token: Int64) {
        self.owner = owner
        self.token = token
    }
}

/// One endpoint's stored analytics for one generation of a Book.
public struct AnalyticsResult: Sendable, Hashable {
    /// The Book.
    public var bookUUID: BookUUID
    /// The generation the analytics belong to.
    public var generation: Int
    /// The analytics endpoint (`summary`, ...).
    public var endpoint: String
    /// The answer as Ocrolus sent it.
    public var body: [UInt8]
    /// When it was fetched.
    public var retrievedAt: Date

    /// One endpoint's result for one generation.
    public init(bookUUID: BookUUID, generation: Int, endpoint: String, body: [UInt8], retrievedAt: Date) {
        self.bookUUID = bookUUID
        self.generation = generation
        self.endpoint = endpoint
        self.body = body
        self.retrievedAt = retrievedAt
    }
}

extension BookInput {
    /// The facts of a status answer or refusal (none for other inputs).
    public var pollAnswer: PollAnswer {
        switch self {
        case .snapshot(_, let answer), .pollRefused(_, let answer): answer
        default: PollAnswer()
        }
    }

    /// Where a hint comes from (nothing for other inputs).
    public var hintDelivery: HintDelivery {
        if case .webhook(_, let delivery) = self { return delivery }
        return HintDelivery()
    }

    /// What a worker reports with an analytics outcome (nothing for other inputs).
    public var jobReport: JobReport {
        if case .analytics(_, _, let report) = self { return report }
        return JobReport()
    }
}
