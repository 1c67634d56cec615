import BookWatchCore
import Foundation

/// Where bookwatch keeps its progress: SQLite for one node, PostgreSQL for several replicas
/// sharing one database. `StoreConformanceTests` runs the same cases against both.
///
/// Every method is one transaction. Work that replicas share (due polls, inbox rows, analytics
/// jobs) is *claimed* with a lease before it is done, so a replica that dies loses its claims
/// when they expire and another one takes the work. `apply` is the heart: it loads a Book's machine, feeds it one
/// input, and writes the new state together with the rows its actions ask for (analytics job,
/// poll schedule) in the same transaction, so a crash leaves either all of it or none.
///
/// It is the sum of its roles (Books, inbox, polls, jobs, notifications, maintenance); a service
/// depends on the role it uses (the ingress's `InboxWriter` on `InboxStore`, the completion hook
/// on `NotificationStore`), the `Watcher` on the whole.
public protocol BookStore: BookRegistry, InboxStore, PollStore, JobStore, NotificationStore, StoreMaintenance {}

extension BookRegistry {
    /// Books ordered by uuid, optionally only those in `state`, at most `limit` of them.
    public func books(state: BookPhase?, limit: Int?) async throws -> [BookRecord] {
        try await books(state: state, label: nil, limit: limit)
    }
}

/// The Books: transitions (`apply`, the heart) and what `status`, `/books/{uuid}` and the metrics
/// read about them.
public protocol BookRegistry: Sendable {
    /// Feeds `input` to the machine of `uuid` and commits the result with its actions' rows.
    /// A missing Book is created only for `.command(.track(_))`; otherwise the answer is nil.
    func apply(
        _ input: BookInput,
        to uuid: BookUUID,
        at now: Date,
        options: TransitionOptions
    ) async throws
        -> TransitionOutcome?

    /// One Book with its schedule and analytics summary, or nil when it is not tracked.
    func book(_ uuid: BookUUID) async throws -> BookRecord?

    /// Books ordered by uuid, optionally only those in `state` and with the operator's `label`,
    /// at most `limit` of them.
    func books(state: BookPhase?, label: String?, limit: Int?) async throws -> [BookRecord]

    /// Tracks Books (`track --from`) in one transaction, each with its label when one is given;
    /// answers, in order, whether each was newly tracked.
    func track(_ books: [(uuid: BookUUID, label: String?)], source: TrackSource, at now: Date) async throws -> [Bool]

    /// Sets (nil: clears) the operator's label of a Book (`track --label`, `track --from`).
    func setLabel(_ label: String?, of uuid: BookUUID) async throws

    /// How many Books are in each state (states with none are left out).
    func totals() async throws -> [BookPhase: Int]

    /// How many tracked Books are still processing (tracking or processing: their webhooks are
    /// expected), counted on the state index, and how many finished ones have a retention poll
    /// (they share `PollSchedule.finishedPollShare` of the budget).
    func polledCounts() async throws -> PolledBooks

    /// True when the Book was untracked (a tombstone): webhooks never track it again; only
    /// `track` does.
    func isUntracked(_ uuid: BookUUID) async throws -> Bool

    /// The stored analytics results of a Book, newest generation first.
    func analyticsResults(for uuid: BookUUID, endpoint: String?) async throws -> [AnalyticsResult]

    /// Every analytics job of a Book, oldest generation first (`status UUID`).
    func analyticsJobs(of uuid: BookUUID) async throws -> [AnalyticsJobSummary]

    /// The newest `limit` inbox rows about a Book, newest first, with how each was applied
    /// (`status UUID`).
    func recentDeliveries(about uuid: BookUUID, limit: Int) async throws -> [(delivery: StoredDelivery, outcome: String?)]

    /// Every Book's stored results in key order (Book, generation, endpoint) after `after`
    /// (exclusive; nil: from the start), retrieved at or after `since` (nil: any time), at most
    /// `limit`: `bookwatch analytics export` pages through them.
    func analyticsResults(retrievedSince since: Date?, after: AnalyticsResult?, limit: Int) async throws -> [AnalyticsResult]

    /// Counts for the metrics gauges read at each scrape, each on an index (Books by state,
    /// pending inbox rows, polls late by more than `overdueBefore`); `documents` is left empty.
    func gauges(overdueBefore: Date) async throws -> StoreGauges

    /// Documents of tracked Books by progress: a scan of the documents table, so it is kept off
    /// the scrape (`DocumentGaugeRefresher` reads it in the background).
    func documentCounts() async throws -> [DocumentProgress: Int]

    /// The poll schedule transitions use (intervals, retention).
    var schedule: PollSchedule { get }

    /// The uuid of the tracked Book with this pk, if any.
    func uuid(forPK pk: Int) async throws -> BookUUID?

    /// Jobs by state and results stored (demo summary, tests).
    func analyticsCounts() async throws -> (jobs: [String: Int], results: Int)
}

/// The webhook inbox: deliveries stored before they are answered 200, claimed and marked by the
/// watcher's inbox loop.
public protocol InboxStore: Sendable {
    /// Appends a webhook delivery to the inbox; `.duplicate` when its request id is already there.
    func appendToInbox(_ delivery: InboxDelivery) async throws -> InboxAppendOutcome

    /// Appends several deliveries in one transaction (group commit); one outcome each, in order.
    func appendToInbox(batch: [InboxDelivery]) async throws -> [InboxAppendOutcome]

    /// Whether a delivery with this request id is in the inbox (processed or not, until pruned):
    /// every delivery answered 200 must be.
    func inboxContains(requestID: String) async throws -> Bool

    /// The newest inbox row's id (0 when the inbox is empty): `bookwatch webhooks test` then reads
    /// what arrives after it.
    func newestInboxID() async throws -> Int64

    /// Inbox rows after `id`, oldest first, at most `limit`, processed or not (until pruned).
    func inboxDeliveries(after id: Int64, limit: Int) async throws -> [StoredDelivery]

    /// Claims up to `limit` unprocessed inbox rows, oldest first, for `lease` (rows another
    /// replica holds are skipped; an expired claim is taken over).
    func claimInbox(owner: String, now: Date, limit: Int, lease: TimeInterval) async throws -> [StoredDelivery]

    /// Marks an inbox row processed with an outcome, unless it already is; answers whether it was
    /// this call that marked it.
    @discardableResult
    func markProcessed(_ id: Int64, at: Date, outcome: InboxOutcome) async throws -> Bool

    /// Marks several rows `owner` decided, in one transaction (a round's deliveries that changed
    /// no Book: one commit instead of one each, which a flood about untracked Books would
    /// otherwise cost the single writer the webhook door shares); answers the ids this call
    /// marked. Only rows `owner` still holds are marked: one another replica has claimed since
    /// (the lease lapsed while the marks were held), or claimed and deferred for a retry, is left
    /// to that replica and its retry: their decision is the newer one.
    func markProcessed(batch: [InboxMark], owner: String, at: Date) async throws -> Set<Int64>

    /// Gives claimed, unprocessed rows back at once.
    func releaseInbox(_ ids: [Int64]) async throws

    /// Gives one row `owner` holds back to be claimed again no earlier than `until`, its
    /// attempts counted (`StoredDelivery.attempts`): a delivery that cannot be applied yet waits
    /// alone while the rows after it go on.
    func deferInbox(_ id: Int64, owner: String, until: Date) async throws
}

/// The poll schedule replicas share: due polls claimed with a lease, urgent requests, failures
/// spaced, polls tightened when webhooks stop being trusted.
public protocol PollStore: Sendable {
    /// Claims up to `limit` polls due by `now` (urgent first, then the most overdue), skipping
    /// `excluding` and rows another replica holds: each claimed row's next poll moves to
    /// `now + lease` (so it comes due again if this replica dies) and records the claim, which the
    /// poll's snapshot hands back in the snapshot's `PollAnswer`.
    func claimDuePolls(now: Date, limit: Int, lease: TimeInterval, excluding: Set<BookUUID>) async throws -> [DuePoll]

    /// The earliest scheduled poll, if any.
    func nextPollAt() async throws -> Date?

    /// Asks for a poll of a tracked Book at `at` (earlier than any scheduled one) for `reason`.
    func requestPoll(_ uuid: BookUUID, at: Date, reason: PollReason) async throws

    /// After a failed poll: moves a Book's next poll to `until`, counts the failure (`DuePoll.failures`)
    /// and ends its claim; the poll stays urgent only with `keepUrgent` (the first retry).
    func deferPoll(_ uuid: BookUUID, until: Date, keepUrgent: Bool) async throws

    /// When webhooks stop being trusted: pulls scheduled polls in as `PollSchedule.tightened`
    /// decides (Books still processing to within `silentInterval`, or twice the minimum when it
    /// is nil; finished Books, spaced out while webhooks were trusted, to within the maximum or
    /// `finishedInterval` when longer),
    /// spaced evenly with the Book heard from longest ago first, jittered from the store's random
    /// source; answers how many moved. Urgent and claimed polls stay. `scope` says whose polls
    /// (`TighteningScope`).
    @discardableResult
    func tightenPolls(now: Date, scope: TighteningScope, silentInterval: TimeInterval?, finishedInterval: TimeInterval?) async throws -> Int
}

/// Whose scheduled polls a tightening pulls in.
public enum TighteningScope: Sendable, Hashable {
    /// Books no status answer has shown yet (`tracking`), their first poll as scheduled (no
    /// failure, no doubt): one set outside the watcher (`bookwatch track --new` from the CLI) as
    /// if webhooks were trusted.
    case tracking
    /// Books still processing, `tracking` ones included (a suspected outage: webhooks stopped
    /// while Books were expected to send them).
    case processing
    /// Those and the finished Books watched for a reopen.
    case all
}

extension PollStore {
    /// `tightenPolls(now:scope:silentInterval:finishedInterval:)` for every Book's polls
    /// (`includingFinished`) or only those of Books still processing.
    @discardableResult
    public func tightenPolls(now: Date, includingFinished: Bool, silentInterval: TimeInterval?, finishedInterval: TimeInterval?) async throws -> Int {
        try await tightenPolls(
            now: now,
            scope: includingFinished ? .all : .processing,
            silentInterval: silentInterval,
            finishedInterval: finishedInterval
        )
    }

    /// `tightenPolls(now:includingFinished:silentInterval:finishedInterval:)` with the spreads for
    /// an unknown budget.
    @discardableResult
    public func tightenPolls(now: Date, includingFinished: Bool) async throws -> Int {
        try await tightenPolls(now: now, includingFinished: includingFinished, silentInterval: nil, finishedInterval: nil)
    }

    /// `tightenPolls(now:includingFinished:)` for every Book's polls.
    @discardableResult
    public func tightenPolls(now: Date) async throws -> Int { try await tightenPolls(now: now, includingFinished: true) }
}

/// Analytics jobs: claimed under fenced leases, results stored under the claim, dead workers'
/// leases re-armed.
public protocol JobStore: Sendable {
    /// Stores one endpoint's analytics result under the job's claim: only while `claim` still
    /// holds the generation's live (running) job, else `StoreError` `.lostClaim` and nothing is
    /// written. A result already stored for the (book, generation, endpoint) is kept.
    func storeAnalyticsResult(_ result: AnalyticsResult, claim: JobClaim) async throws

    /// Stores one page of a paged endpoint under the job's claim, as `storeAnalyticsResult`; a page
    /// already stored at that offset is kept. Storing the endpoint's result deletes its pages.
    func storeAnalyticsPage(_ page: AnalyticsPage, claim: JobClaim) async throws

    /// The pages of a paged endpoint stored for a generation so far, by offset.
    func analyticsPages(_ uuid: BookUUID, generation: Int, endpoint: String) async throws -> [AnalyticsPage]

    /// Deletes the pages of a paged endpoint stored for a generation, under the job's claim (as
    /// `storeAnalyticsPage`): the endpoint is fetched again from its first page.
    func discardAnalyticsPages(_ uuid: BookUUID, generation: Int, endpoint: String, claim: JobClaim) async throws

    /// Extends a running job's lease to `until` while `claim` holds it; false when it no longer
    /// does (the worker must stop: another one may own the job now).
    func renewJobLease(_ claim: JobClaim, bookUUID: BookUUID, generation: Int, until: Date) async throws -> Bool

    /// Claims the most overdue pending analytics job due by `now` for `owner` until `now + lease`,
    /// with a new lease token (`JobClaim`), in one transaction before any call is made. Claims
    /// are not attempts: only real errors count (`ClaimedJob.attempts`).
    func claimAnalyticsJob(owner: String, now: Date, lease: TimeInterval) async throws -> ClaimedJob?

    /// The earliest due time of a pending job, if any.
    func nextJobDueAt() async throws -> Date?

    /// Returns running jobs whose lease expired (their worker died) to `pending`, due now.
    @discardableResult
    func rearmExpiredLeases(now: Date) async throws -> Int

    /// On startup: returns the jobs a previous run of this process left running to `pending`.
    /// A single-node store re-arms every running job; a shared one only `owner`'s and expired ones
    /// (another replica's live lease is its own).
    @discardableResult
    func recoverLeases(owner: String, now: Date) async throws -> Int

    /// Endpoints already stored for a generation (a retry fetches only the others).
    func storedEndpoints(_ uuid: BookUUID, generation: Int) async throws -> Set<String>
}

/// Retrievals handed on (`--on-complete`), claimed so replicas run the hook once each.
public protocol NotificationStore: Sendable {
    /// Retrievals not yet handed on (`--on-complete`), oldest first.
    func pendingNotifications(limit: Int) async throws -> [PendingNotification]

    /// Claims the oldest undelivered retrieval not claimed by a live lease, for `owner` until
    /// `now + lease`: replicas sharing a database run the hook once each, not once per replica.
    func claimNotification(owner: String, now: Date, lease: TimeInterval) async throws -> PendingNotification?

    /// Records the outcome of one hand-on attempt (nil error: delivered) and ends its claim; a failed
    /// one is claimed again no earlier than `retryAt`.
    func recordNotification(_ notification: PendingNotification, at: Date, error: String?, retryAt: Date?) async throws
}

/// Health, shared state and housekeeping of the database itself.
public protocol StoreMaintenance: Sendable {
    /// Performs a tiny durable write; throws when the database cannot be written.
    func probeWritable(at now: Date) async throws

    /// A value the deployment keeps across restarts and shares between replicas (the webhook loss
    /// estimate, the last webhook), or nil when none was stored.
    func sharedState(_ key: String) async throws -> String?

    /// Replaces a shared value by `transform` of the current one, in one transaction (replicas'
    /// updates serialise); answers the value stored.
    @discardableResult
    func updateSharedState(_ key: String, at now: Date, _ transform: @escaping @Sendable (String?) -> String) async throws -> String

    /// Deletes, at most `limit` rows of each kind, what is older than `before` and no longer
    /// needed: processed inbox deliveries (their request ids dedupe Ocrolus's retries until then),
    /// delivered notifications, and complete or superseded jobs of earlier generations (a Book's
    /// newest job and every failed one stay). Stored analytics and Books are kept.
    func prune(before: Date, limit: Int) async throws -> PruneCounts

    /// Closes connections; later calls fail.
    func close() async throws
}

extension NotificationStore {
    /// `recordNotification` with no retry time (claimable again at once).
    public func recordNotification(_ notification: PendingNotification, at: Date, error: String?) async throws {
        try await recordNotification(notification, at: at, error: error, retryAt: nil)
    }
}
