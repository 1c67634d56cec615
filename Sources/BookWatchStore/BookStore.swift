import BookWatchCore
import Foundation

/// Where bookwatch keeps its progress. SQLite today; the protocol lets PostgreSQL follow.
///
/// Every method is one transaction. `apply` is the heart: it loads a Book's machine, feeds it one
/// input, and writes the new state together with the rows its actions ask for (analytics job,
/// poll schedule) in the same transaction, so a crash leaves either all of it or none.
public protocol BookStore: Sendable {
    /// Feeds `input` to the machine of `uuid` and commits the result with its actions' rows.
    /// A missing Book is created only for `.command(.track(_))`; otherwise the answer is nil.
    func apply(_ input: BookInput, to uuid: BookUUID, at now: Date, options: TransitionOptions) async throws
        -> TransitionOutcome?

    /// One Book with its schedule and analytics summary, or nil when it is not tracked.
    func book(_ uuid: BookUUID) async throws -> BookRecord?

    /// Books ordered by uuid, optionally only those in `state`, at most `limit` of them.
    func books(state: BookPhase?, limit: Int?) async throws -> [BookRecord]

    /// How many Books are in each state (states with none are left out).
    func totals() async throws -> [BookPhase: Int]

    /// Appends a webhook delivery to the inbox; `.duplicate` when its request id is already there.
    func appendToInbox(_ delivery: InboxDelivery) async throws -> InboxAppendOutcome

    /// Appends several deliveries in one transaction (group commit); one outcome each, in order.
    func appendToInbox(batch: [InboxDelivery]) async throws -> [InboxAppendOutcome]

    /// Performs a tiny durable write; throws when the database cannot be written.
    func probeWritable(at now: Date) async throws

    /// Stores one endpoint's analytics result; a second one for the same
    /// (book, generation, endpoint) throws a `StoreError` of kind `.duplicate`.
    func storeAnalyticsResult(_ result: AnalyticsResult) async throws

    /// The stored analytics results of a Book, newest generation first.
    func analyticsResults(for uuid: BookUUID, endpoint: String?) async throws -> [AnalyticsResult]

    /// Counts for the metrics gauges (Books by state, Documents by progress, pending inbox rows,
    /// polls late by more than `overdueBefore`).
    func gauges(overdueBefore: Date) async throws -> StoreGauges
}

/// Inputs to a transition that the machine does not decide itself.
public struct TransitionOptions: Sendable {
    /// True when no webhook at all has arrived for a long while (polling takes over).
    public var webhooksSilent: Bool
    /// For `.retryAnalyticsJob`: when the job becomes due again (the worker's backoff).
    public var retryAt: Date?
    /// Analytics results written in the same transaction as the transition (the last endpoint's
    /// result commits together with the job's completion).
    public var results: [AnalyticsResult]

    public init(webhooksSilent: Bool = false, retryAt: Date? = nil, results: [AnalyticsResult] = []) {
        self.webhooksSilent = webhooksSilent
        self.retryAt = retryAt
        self.results = results
    }
}

/// What a committed transition came to.
public struct TransitionOutcome: Sendable {
    /// The machine after the input (before an untrack deleted it).
    public var machine: BookMachine
    public var actions: [BookAction]
    /// True when the Book was created by this transition.
    public var created: Bool
    /// The next poll as stored (nil: none scheduled).
    public var nextPollAt: Date?
}

/// Analytics job states as stored and shown by `status`.
public enum AnalyticsJobState: String, Sendable, CaseIterable {
    case pending, running, complete, failed, superseded
}

/// The analytics job of a Book's current generation, as `status` shows it.
public struct AnalyticsJobSummary: Sendable, Equatable {
    public var generation: Int
    public var state: AnalyticsJobState
    public var attempts: Int
    public var dueAt: Date?
    public var retrievedAt: Date?
    public var lastError: String?

    public init(
        generation: Int, state: AnalyticsJobState, attempts: Int, dueAt: Date?, retrievedAt: Date?, lastError: String?
    ) {
        self.generation = generation
        self.state = state
        self.attempts = attempts
        self.dueAt = dueAt
        self.retrievedAt = retrievedAt
        self.lastError = lastError
    }
}

/// A Book as `status` shows it.
public struct BookRecord: Sendable {
    public var machine: BookMachine
    public var nextPollAt: Date?
    /// The reason of a pending urgent poll, if one is requested.
    public var pendingPollReason: PollReason?
    public var analytics: AnalyticsJobSummary?

    public var uuid: BookUUID { machine.uuid }
    public var documentsTotal: Int { machine.confirmedDocuments.count }
    public var documentsFinished: Int { machine.confirmedDocuments.filter { $0.status?.isFinished ?? false }.count }
    public var documentsFailed: Int { machine.confirmedDocuments.filter { $0.status?.progress == .failed }.count }
}

/// One webhook delivery as received, stored before it is answered 200.
public struct InboxDelivery: Sendable, Equatable {
    public var requestID: String?
    public var receivedAt: Date
    public var bookUUID: BookUUID?
    public var bookPK: Int?
    public var event: String
    public var body: [UInt8]
    public var remoteAddress: String?

    public init(
        requestID: String?, receivedAt: Date, bookUUID: BookUUID?, bookPK: Int?, event: String, body: [UInt8],
        remoteAddress: String? = nil
    ) {
        self.requestID = requestID
        self.receivedAt = receivedAt
        self.bookUUID = bookUUID
        self.bookPK = bookPK
        self.event = event
        self.body = body
        self.remoteAddress = remoteAddress
    }
}

public enum InboxAppendOutcome: Sendable, Equatable {
    case stored(id: Int64)
    case duplicate
}

/// One endpoint's stored analytics for one generation of a Book.
public struct AnalyticsResult: Sendable, Equatable {
    public var bookUUID: BookUUID
    public var generation: Int
    public var endpoint: String
    public var body: [UInt8]
    public var retrievedAt: Date

    public init(bookUUID: BookUUID, generation: Int, endpoint: String, body: [UInt8], retrievedAt: Date) {
        self.bookUUID = bookUUID
        self.generation = generation
        self.endpoint = endpoint
        self.body = body
        self.retrievedAt = retrievedAt
    }
}
