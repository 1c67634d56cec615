import struct Foundation.Date

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
