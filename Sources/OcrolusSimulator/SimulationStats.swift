import Foundation

/// Counters and ground truth of a simulation (`GET /_sim/stats`).
public struct SimulationStats: Codable, Sendable {
    /// One Book as the simulator knows it to be.
    public struct BookTruth: Codable, Sendable {
        /// The Book.
        public var uuid: String
        /// Its pk.
        public var pk: Int
        /// Its book status now.
        public var status: String
        /// The generation in force now (0 before the first VERIFIED).
        public var generation: Int
        /// Generations that became VERIFIED before any deletion (analytics are due once each).
        public var finishedGenerations: Int
        /// Generations finished by now (what should have been retrieved by now).
        public var finishedByNow: Int
        /// When each generation became VERIFIED (RFC 3339).
        public var verifiedAt: [String]
        /// When each generation's analytics became ready (RFC 3339).
        public var analyticsReadyAt: [String]
        /// When it was deleted, if it was.
        public var deletedAt: String?
        /// The webhook flavour it sends.
        public var flavour: String
    }

    /// The scenario time of these figures (RFC 3339).
    public var now: String
    /// Books in the scenario.
    public var books: Int
    /// OAuth tokens issued.
    public var tokensIssued = 0
    /// Status calls answered.
    public var statusCalls = 0
    /// Status calls per Book uuid.
    public var statusCallsByBook: [String: Int] = [:]
    /// Status calls answered while the Book was finished (`VERIFIED`): reopen watching and
    /// confirmations, as opposed to calls made while it was still processing.
    public var statusCallsWhileFinished = 0
    /// When a status call first found each Book finished (simulated time, RFC 3339), by uuid:
    /// the benchmarks split a finish's delay into noticing it and retrieving after.
    public var firstSeenFinished: [String: String] = [:]
    /// Analytics answered 200.
    public var analyticsOK = 0
    /// 200 answers per `uuid:generation:endpoint`: exactly once is the goal.
    public var analyticsOKByKey: [String: Int] = [:]
    /// When each of those 200s was answered (simulated time, RFC 3339), by the same key: the
    /// crash test tells a repeat caused by a kill in flight from a real one by these.
    public var analyticsOKTimes: [String: [String]] = [:]
    /// The serial numbers of those 200s (the `serial` in each body), by the same key.
    public var analyticsOKSerials: [String: [Int]] = [:]
    /// Analytics answered 425 (not ready).
    public var analyticsNotReady = 0
    /// Answers 401 (token missing, expired or refused).
    public var answers401 = 0
    /// Answers 429 (rate limit or fault).
    public var answers429 = 0
    /// Of those, the 429s of the enforced organisation limit (`faults.rateLimit`).
    public var answersRateLimited = 0
    /// API requests (status, analytics, webhook management) that passed authorization and the
    /// enforced limit: what the organisation's budget was spent on.
    public var requestsAdmitted = 0
    /// Answers 5xx (faults).
    public var answers5xx = 0
    /// Gateway 404s without an Ocrolus code (`faults.bareNotFound`).
    public var answersBare404 = 0
    /// Webhook events generated.
    public var webhooksGenerated = 0
    /// Events dropped by `faults.webhookDrop` before any attempt.
    public var webhooksDroppedByFault = 0
    /// Events sent twice.
    public var webhooksDuplicated = 0
    /// Events held back (out of order).
    public var webhooksDelayed = 0
    /// Delivery attempts made, retries included.
    public var deliveryAttempts = 0
    /// Answers to deliveries by HTTP status ("0" = no answer in time).
    public var deliveryAnswers: [String: Int] = [:]
    /// Request ids of deliveries answered 200 (every one must be in the receiver's inbox).
    public var acceptedRequestIDs: [String] = []
    /// Deliveries given up after the retries.
    public var deliveriesAbandoned = 0
    /// Every Book as the simulator knows it to be.
    public var truth: [BookTruth] = []

    /// Keys (`uuid:generation:endpoint`) retrieved more than once.
    public var duplicateRetrievals: [String] { analyticsOKByKey.filter { $0.value > 1 }.map(\.key).sorted() }
}
