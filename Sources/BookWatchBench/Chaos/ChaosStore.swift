import BookWatchCore
import BookWatchStore
import Foundation
import Synchronization

/// Kills a replica at a store transaction boundary: armed with a count of store calls to let
/// through, it fails the next one before it runs (`after == false`) or after it committed
/// (`after == true`: the work is done, the process never hears of it). Once fired, every call
/// of that incarnation fails.
final class CrashGate: Sendable {
    private struct State {
        var dead = false
        var countdown: Int?
        var after = false
        var fireAfter = false
    }

    private let state = Mutex(State())

    var isDead: Bool { state.withLock { $0.dead } }

    func arm(after calls: Int, afterCommit: Bool) {
        state.withLock { state in
            state.countdown = max(calls, 1)
            state.after = afterCommit
        }
    }

    func kill() { state.withLock { $0.dead = true } }

    /// A crash armed but not fired yet never fires (the drain heals the world).
    func disarm() {
        state.withLock { state in
            state.countdown = nil
            state.fireAfter = false
        }
    }

    /// Before a store call: throws when the replica is (now) dead.
    func before() throws(ChaosCrash) {
        let fire = state.withLock { state -> Bool in
            if state.dead { return true }
            guard let countdown = state.countdown else { return false }
            state.countdown = countdown - 1
            guard countdown - 1 <= 0 else { return false }
            state.countdown = nil
            if state.after {
                state.fireAfter = true
                return false
            }
            state.dead = true
            return true
        }
        if fire { throw ChaosCrash() }
    }

    /// After a store call returned: throws when the crash was armed for after this commit.
    func after() throws(ChaosCrash) {
        let fire = state.withLock { state -> Bool in
            guard state.fireAfter else { return false }
            state.fireAfter = false
            state.dead = true
            return true
        }
        if fire { throw ChaosCrash() }
    }
}

/// The process died (the chaos kill); nothing after it happened.
struct ChaosCrash: Error, CustomStringConvertible {
    var description: String { "process killed" }
}

/// One replica's view of the shared store: every call passes the replica's crash gate, and
/// every transition is recorded (coverage of the machine, and the failing Book's trace).
final class ChaosStore: BookStore {
    let base: any BookStore
    let gate: CrashGate
    let replica: Int
    let log: ChaosLog
    /// The shared-state keys this incarnation has read (scenario 9's marker counts first reads).
    private let readKeys = Mutex(Set<String>())

    init(base: any BookStore, gate: CrashGate, replica: Int, log: ChaosLog) {
        self.base = base
        self.gate = gate
        self.replica = replica
        self.log = log
    }

    var schedule: PollSchedule { base.schedule }

    private func pass<T>(_ name: String, _ uuid: BookUUID? = nil, _ body: () async throws -> T) async throws -> T {
        log.touchedStore()
        do {
            try gate.before()
        } catch {
            log.note(replica: replica, uuid, "killed before \(name)")
            throw error
        }
        let value: T
        do {
            value = try await body()
        } catch let error as StoreError where error.isLostClaim {
            log.count("scenario 7: a late worker's write refused by its fence")
            log.note(replica: replica, uuid, "\(name) refused: claim lost")
            throw error
        }
        do {
            try gate.after()
        } catch {
            log.count("scenario: killed between a commit and the next call")
            log.note(replica: replica, uuid, "killed after \(name) committed")
            throw error
        }
        return value
    }

    func apply(_ input: BookInput, to uuid: BookUUID, at now: Date, options: TransitionOptions) async throws -> TransitionOutcome? {
        try await pass("apply \(ChaosLog.label(input))", uuid) {
            let before = try await base.book(uuid)?.machine.phase
            let outcome = try await base.apply(input, to: uuid, at: now, options: options)
            if let outcome {
                log.transition(replica: replica, uuid, from: before, input: input, to: outcome.machine.phase, actions: outcome.actions)
                log.scenarios(uuid, input: input, actions: outcome.actions)
            } else {
                log.note(replica: replica, uuid, "\(ChaosLog.label(input)) ignored (untracked)")
            }
            return outcome
        }
    }

    func book(_ uuid: BookUUID) async throws -> BookRecord? { try await pass("book") { try await base.book(uuid) } }
    func books(state: BookPhase?, label: String?, limit: Int?) async throws -> [BookRecord] {
        try await pass("books") { try await base.books(state: state, label: label, limit: limit) }
    }
    func track(_ books: [(uuid: BookUUID, label: String?)], source: TrackSource, at now: Date) async throws -> [Bool] {
        try await pass("track") { try await base.track(books, source: source, at: now) }
    }
    func setLabel(_ label: String?, of uuid: BookUUID) async throws { try await pass("setLabel") { try await base.setLabel(label, of: uuid) } }
    func totals() async throws -> [BookPhase: Int] { try await pass("totals") { try await base.totals() } }
    func polledCounts() async throws -> PolledBooks { try await pass("polledCounts") { try await base.polledCounts() } }
    func appendToInbox(_ delivery: InboxDelivery) async throws -> InboxAppendOutcome {
        try await pass("appendToInbox", delivery.bookUUID) { try await base.appendToInbox(delivery) }
    }
    func appendToInbox(batch: [InboxDelivery]) async throws -> [InboxAppendOutcome] {
        try await pass("appendToInbox") { try await base.appendToInbox(batch: batch) }
    }
    func probeWritable(at now: Date) async throws { try await pass("probeWritable") { try await base.probeWritable(at: now) } }
    func storeAnalyticsResult(_ result: AnalyticsResult, claim: JobClaim) async throws {
        try await pass("storeAnalyticsResult", result.bookUUID) {
            try await base.storeAnalyticsResult(result, claim: claim)
            log.note(replica: replica, result.bookUUID, "stored \(result.endpoint) of generation \(result.generation)")
        }
    }
    func storeAnalyticsPage(_ page: AnalyticsPage, claim: JobClaim) async throws {
        try await pass("storeAnalyticsPage", page.bookUUID) {
            try await base.storeAnalyticsPage(page, claim: claim)
            log.count("store: a page of a paged endpoint")
            log.note(replica: replica, page.bookUUID, "stored \(page.endpoint) from \(page.offset) of generation \(page.generation)")
        }
    }
    func discardAnalyticsPages(_ uuid: BookUUID, generation: Int, endpoint: String, claim: JobClaim) async throws {
        try await pass("discardAnalyticsPages", uuid) {
            try await base.discardAnalyticsPages(uuid, generation: generation, endpoint: endpoint, claim: claim)
            log.count("store: a paged endpoint's pages discarded after a 425 midway")
            log.note(replica: replica, uuid, "discarded the \(endpoint) pages of generation \(generation)")
        }
    }
    func analyticsPages(_ uuid: BookUUID, generation: Int, endpoint: String) async throws -> [AnalyticsPage] {
        try await pass("analyticsPages") { try await base.analyticsPages(uuid, generation: generation, endpoint: endpoint) }
    }
    func renewJobLease(_ claim: JobClaim, bookUUID: BookUUID, generation: Int, until: Date) async throws -> Bool {
        try await pass("renewJobLease", bookUUID) { try await base.renewJobLease(claim, bookUUID: bookUUID, generation: generation, until: until) }
    }
    func isUntracked(_ uuid: BookUUID) async throws -> Bool {
        try await pass("isUntracked") {
            let untracked = try await base.isUntracked(uuid)
            if untracked { log.count("scenario 6: a webhook about an untracked Book") }
            return untracked
        }
    }
    func inboxContains(requestID: String) async throws -> Bool {
        try await pass("inboxContains") { try await base.inboxContains(requestID: requestID) }
    }
    func newestInboxID() async throws -> Int64 { try await pass("newestInboxID") { try await base.newestInboxID() } }
    func inboxDeliveries(after id: Int64, limit: Int) async throws -> [StoredDelivery] {
        try await pass("inboxDeliveries") { try await base.inboxDeliveries(after: id, limit: limit) }
    }
    func analyticsResults(for uuid: BookUUID, endpoint: String?) async throws -> [AnalyticsResult] {
        try await pass("analyticsResults") { try await base.analyticsResults(for: uuid, endpoint: endpoint) }
    }
    func analyticsJobs(of uuid: BookUUID) async throws -> [AnalyticsJobSummary] {
        try await pass("analyticsJobs") { try await base.analyticsJobs(of: uuid) }
    }
    func recentDeliveries(about uuid: BookUUID, limit: Int) async throws -> [(delivery: StoredDelivery, outcome: String?)] {
        try await pass("recentDeliveries") { try await base.recentDeliveries(about: uuid, limit: limit) }
    }
    func analyticsResults(retrievedSince since: Date?, after: AnalyticsResult?, limit: Int) async throws -> [AnalyticsResult] {
        try await pass("analyticsResults(retrievedSince:)") { try await base.analyticsResults(retrievedSince: since, after: after, limit: limit) }
    }
    func gauges(overdueBefore: Date) async throws -> StoreGauges { try await pass("gauges") { try await base.gauges(overdueBefore: overdueBefore) } }
    func documentCounts() async throws -> [DocumentProgress: Int] { try await pass("documentCounts") { try await base.documentCounts() } }
    func uuid(forPK pk: Int) async throws -> BookUUID? { try await pass("uuid(forPK:)") { try await base.uuid(forPK: pk) } }
    func claimDuePolls(now: Date, limit: Int, lease: TimeInterval, excluding: Set<BookUUID>) async throws -> [DuePoll] {
        try await pass("claimDuePolls") {
            let polls = try await base.claimDuePolls(now: now, limit: limit, lease: lease, excluding: excluding)
            for poll in polls { log.note(replica: replica, poll.bookUUID, "claimed poll (\(poll.reason?.rawValue ?? "scheduled"))") }
            return polls
        }
    }
    func nextPollAt() async throws -> Date? { try await pass("nextPollAt") { try await base.nextPollAt() } }
    func requestPoll(_ uuid: BookUUID, at: Date, reason: PollReason) async throws {
        try await pass("requestPoll", uuid) { try await base.requestPoll(uuid, at: at, reason: reason) }
    }
    func deferPoll(_ uuid: BookUUID, until: Date, keepUrgent: Bool) async throws {
        try await pass("deferPoll", uuid) {
            try await base.deferPoll(uuid, until: until, keepUrgent: keepUrgent)
            log.note(replica: replica, uuid, "poll deferred to \(log.stamp(until))")
        }
    }
    func tightenPolls(now: Date, scope: TighteningScope, silentInterval: TimeInterval?, finishedInterval: TimeInterval?) async throws -> Int {
        try await pass("tightenPolls") {
            try await base.tightenPolls(
                now: now,
                scope: scope,
                silentInterval: silentInterval,
                finishedInterval: finishedInterval
            )
        }
    }
    func claimInbox(owner: String, now: Date, limit: Int, lease: TimeInterval) async throws -> [StoredDelivery] {
        try await pass("claimInbox") { try await base.claimInbox(owner: owner, now: now, limit: limit, lease: lease) }
    }
    func markProcessed(_ id: Int64, at: Date, outcome: InboxOutcome) async throws -> Bool {
        try await pass("markProcessed") { try await base.markProcessed(id, at: at, outcome: outcome) }
    }
    func markProcessed(batch: [InboxMark], owner: String, at: Date) async throws -> Set<Int64> {
        try await pass("markProcessed(batch:)") { try await base.markProcessed(batch: batch, owner: owner, at: at) }
    }
    func releaseInbox(_ ids: [Int64]) async throws { try await pass("releaseInbox") { try await base.releaseInbox(ids) } }
    func deferInbox(_ id: Int64, owner: String, until: Date) async throws {
        log.count("scenario 8: a delivery that cannot be applied yet waits alone")
        try await pass("deferInbox") { try await base.deferInbox(id, owner: owner, until: until) }
    }
    func claimAnalyticsJob(owner: String, now: Date, lease: TimeInterval) async throws -> ClaimedJob? {
        try await pass("claimAnalyticsJob") {
            let job = try await base.claimAnalyticsJob(owner: owner, now: now, lease: lease)
            if let job { log.note(replica: replica, job.bookUUID, "claimed job of generation \(job.generation)") }
            return job
        }
    }
    func nextJobDueAt() async throws -> Date? { try await pass("nextJobDueAt") { try await base.nextJobDueAt() } }
    func rearmExpiredLeases(now: Date) async throws -> Int {
        try await pass("rearmExpiredLeases") { try await base.rearmExpiredLeases(now: now) }
    }
    func recoverLeases(owner: String, now: Date) async throws -> Int {
        try await pass("recoverLeases") { try await base.recoverLeases(owner: owner, now: now) }
    }
    func storedEndpoints(_ uuid: BookUUID, generation: Int) async throws -> Set<String> {
        try await pass("storedEndpoints") { try await base.storedEndpoints(uuid, generation: generation) }
    }
    func analyticsCounts() async throws -> (jobs: [String: Int], results: Int) {
        try await pass("analyticsCounts") { try await base.analyticsCounts() }
    }
    func pendingNotifications(limit: Int) async throws -> [PendingNotification] {
        try await pass("pendingNotifications") { try await base.pendingNotifications(limit: limit) }
    }
    func claimNotification(owner: String, now: Date, lease: TimeInterval) async throws -> PendingNotification? {
        try await pass("claimNotification") { try await base.claimNotification(owner: owner, now: now, lease: lease) }
    }
    func recordNotification(_ notification: PendingNotification, at: Date, error: String?, retryAt: Date?) async throws {
        try await pass("recordNotification") { try await base.recordNotification(notification, at: at, error: error, retryAt: retryAt) }
    }
    func sharedState(_ key: String) async throws -> String? {
        try await pass("sharedState") {
            let value = try await base.sharedState(key)
            let first = readKeys.withLock { $0.insert(key).inserted }
            if first, value != nil { log.count("scenario 9: a replica started from the shared measurements") }
            return value
        }
    }
    func updateSharedState(_ key: String, at now: Date, _ transform: @escaping @Sendable (String?) -> String) async throws -> String {
        try await pass("updateSharedState") { try await base.updateSharedState(key, at: now, transform) }
    }
    func prune(before: Date, limit: Int) async throws -> PruneCounts {
        try await pass("prune") {
            let counts = try await base.prune(before: before, limit: limit)
            if counts.total > 0 { log.count("scenario 10: old rows pruned") }
            return counts
        }
    }
    /// The shared store outlives a replica: closing one replica's view closes nothing.
    func close() async throws {}
}
