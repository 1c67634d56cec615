import Foundation

/// Counters and ground truth of a simulation (`GET /_sim/stats`).
public struct SimulationStats: Codable, Sendable {
    public struct BookTruth: Codable, Sendable {
        public var uuid: String
        public var pk: Int
        public var status: String
        /// The generation in force now (0 before the first VERIFIED).
        public var generation: Int
        /// Generations that became VERIFIED before any deletion (analytics are due once each).
        public var finishedGenerations: Int
        /// Generations finished by now (what should have been retrieved by now).
        public var finishedByNow: Int
        public var verifiedAt: [String]
        public var analyticsReadyAt: [String]
        public var deletedAt: String?
        public var flavour: String
    }

    public var now: String
    public var books: Int
    public var tokensIssued = 0
    public var statusCalls = 0
    /// Status calls per Book uuid.
    public var statusCallsByBook: [String: Int] = [:]
    /// Status calls answered while the Book was finished (`VERIFIED`): reopen watching and
    /// confirmations, as opposed to calls made while it was still processing.
    public var statusCallsWhileFinished = 0
    public var analyticsOK = 0
    /// 200 answers per `uuid:generation:endpoint`: exactly once is the goal.
    public var analyticsOKByKey: [String: Int] = [:]
    public var analyticsNotReady = 0
    public var answers401 = 0
    public var answers429 = 0
    public var answers5xx = 0
    /// Gateway 404s without an Ocrolus code (`faults.bareNotFound`).
    public var answersBare404 = 0
    public var webhooksGenerated = 0
    public var webhooksDroppedByFault = 0
    public var webhooksDuplicated = 0
    public var webhooksDelayed = 0
    public var deliveryAttempts = 0
    /// Answers to deliveries by HTTP status ("0" = no answer in time).
    public var deliveryAnswers: [String: Int] = [:]
    /// Request ids of deliveries answered 200 (every one must be in the receiver's inbox).
    public var acceptedRequestIDs: [String] = []
    /// Deliveries given up after the retries.
    public var deliveriesAbandoned = 0
    public var truth: [BookTruth] = []

    /// Keys (`uuid:generation:endpoint`) retrieved more than once.
    public var duplicateRetrievals: [String] { analyticsOKByKey.filter { $0.value > 1 }.map(\.key).sorted() }
}
