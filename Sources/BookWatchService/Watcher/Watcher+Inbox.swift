import BookWatchClocks
import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import Synchronization

/// The inbox: deliveries stored by the ingress, applied in arrival order.
extension Watcher {
    /// Claims stored deliveries and processes them in arrival order; returns how many. Each is
    /// processed once: the hint commits together with its row's mark, and a row another replica
    /// marked first is skipped.
    @discardableResult
    public func processInbox(limit: Int = 256) async throws -> Int {
        let claimed = try await store.claimInbox(owner: configuration.owner, now: clock.now(), limit: limit, lease: configuration.lease)
        await recordWebhooks(claimed)
        // Books are served side by side, `inboxConcurrency` at a time, each Book's deliveries
        // one after the other: a delivery that needs a status call (a pk not known here) waits
        // for a slow answer without holding up other Books, whose hints would otherwise reach
        // them after a poll had already seen the change (and counted it unannounced). One Book's
        // deliveries stay in order: two of them auto-tracking it at once would race (the second
        // track could overwrite the first's urgent poll), and pk-only ones would each make the
        // status call that one makes for all. Hints are order-free: the machine's property.
        let apiFailed = RoundFlag()
        var byBook: [String: [StoredDelivery]] = [:]
        var order: [String] = []
        for stored in claimed {
            let key = Self.bookKey(stored.delivery)
            if byBook[key] == nil { order.append(key) }
            byBook[key, default: []].append(stored)
        }
        // Deliveries that changed no Book are marked together, in one transaction per
        // `inboxMarkBatch` rows (or, when a Book's task ends, once half a lease has passed, so
        // rows decided here are mostly not claimed again elsewhere while a slow round goes on):
        // a flood about Books not tracked here would otherwise cost the single writer, which the
        // webhook door's group commits wait for, one commit per delivery. A Book whose delivery
        // failed keeps the marks it made before the failure; the round's first error is thrown
        // once every mark is written.
        var settled = Settled()
        var flushedAt = clock.now()
        let flushEvery = configuration.lease / 2
        await withTaskGroup(of: Settled.self) { group in
            var running = 0
            let collect = { (done: Settled) async in
                settled.add(done)
                let now = self.clock.now()
                guard settled.marks.count >= Self.inboxMarkBatch || now.timeIntervalSince(flushedAt) >= flushEvery else { return }
                flushedAt = now
                await settled.flush(self)
            }
            for key in order {
                let deliveries = byBook[key] ?? []
                if running >= Self.inboxConcurrency, let done = await group.next() {
                    running -= 1
                    await collect(done)
                }
                // After a failure or on shutdown no further Book is started (as when the group
                // threw): the rows not started are claimed again once their lease lapses.
                if settled.error != nil || Task.isCancelled { break }
                group.addTask {
                    var settled = Settled()
                    do {
                        for stored in deliveries { settled.add(try await self.settle(stored, apiFailed: apiFailed)) }
                    } catch {
                        settled.error = error
                    }
                    return settled
                }
                running += 1
            }
            for await done in group { await collect(done) }
        }
        await settled.flush(self)
        if let error = settled.error { throw error }
        return settled.counted
    }

    /// Book uuids by pk remembered at most (`State.uuidsByPK`).
    static let pkCacheCapacity = 10_000

    /// Rows marked in one transaction at most (a round claims up to 256).
    static let inboxMarkBatch = 64

    /// What a round's deliveries came to: how many counted as processed, the rows still to mark,
    /// and the first error met.
    struct Settled: Sendable {
        var counted = 0
        var marks: [InboxMark] = []
        var error: (any Error)?

        mutating func add(_ other: Settled) {
            counted += other.counted
            marks += other.marks
            if let failure = other.error { keep(failure) }
        }

        /// Keeps the round's first error, except that a failure replaces a shutdown's
        /// `CancellationError` (which the service loop ends on silently, and would hide it).
        mutating func keep(_ failure: any Error) {
            if error == nil || (error is CancellationError && !(failure is CancellationError)) { error = failure }
        }

        /// Writes the marks held (ids in order, so two replicas' batches take row locks in the
        /// same order); a failure is kept as the round's error and the rows are claimed again
        /// once their lease lapses. A cancelled round (shutdown) still writes what it decided:
        /// the store refuses work from a cancelled task (and would roll back a write it was in
        /// when the cancellation came), so the write always runs in a task of its own.
        mutating func flush(_ watcher: Watcher) async {
            guard !marks.isEmpty else { return }
            let batch = marks.sorted { $0.id < $1.id }
            marks = []
            do {
                counted += try await Task { try await watcher.markTogether(batch) }.value
            } catch {
                keep(error)
            }
        }
    }

    /// Marks the rows in one transaction; answers how many this replica marked as processed (a
    /// poison row given up on is marked but not counted).
    func markTogether(_ marks: [InboxMark]) async throws -> Int {
        guard !marks.isEmpty else { return 0 }
        let marked = try await store.markProcessed(batch: marks, owner: configuration.owner, at: clock.now())
        let counted = marks.filter { marked.contains($0.id) && !$0.outcome.isGiveUp }.count
        state.withLock { $0.counters.inboxProcessed += counted }
        return counted
    }

    /// Which Book a delivery is about, as far as its row tells (uuid, else pk, else the row).
    static func bookKey(_ delivery: InboxDelivery) -> String {
        if let uuid = delivery.bookUUID { return "uuid:\(uuid)" }
        if let pk = delivery.bookPK { return "pk:\(pk)" }
        return "row:\(delivery.requestID ?? UUID().uuidString)"
    }

    /// Set once in a round of work (e.g. "the API failed"), read by the round's concurrent parts.
    public final class RoundFlag: Sendable {
        private let value = Atomic<Bool>(false)
        /// Whether it was set.
        public var isSet: Bool { value.load(ordering: .acquiring) }
        /// Sets it (once set, it stays).
        public func set() { value.store(true, ordering: .releasing) }
        /// Not set.
        public init() {}
    }

    /// How many Books' deliveries are applied at once.
    static let inboxConcurrency = 8

    /// Applies one claimed delivery, or defers it by its own backoff. An applied hint's row was
    /// marked in its transition's transaction (counted here); any other ending is a mark for the
    /// round's one transaction. A delivery that cannot be applied yet (API or database trouble)
    /// waits alone; once the API failed in this round, deliveries that need it wait too, without
    /// a call.
    private func settle(_ stored: StoredDelivery, apiFailed: RoundFlag) async throws -> Settled {
        guard let outcome = await process(stored, apiFailed: apiFailed) else {
            // Shutdown cut the attempt short: it is not an attempt that failed. The row is left
            // as claimed (no mark, no backoff; a last attempt is not given up), and this Book's
            // later deliveries are not tried: the marks already decided are still written.
            if Task.isCancelled { throw CancellationError() }
            if stored.attempts + 1 >= Self.inboxMaxAttempts {
                // A poison row: recorded with its outcome, never retried for ever.
                return Settled(marks: [InboxMark(id: stored.id, outcome: .gaveUp(attempts: stored.attempts + 1))])
            }
            let wait = Self.inboxRetryDelay(attempts: stored.attempts + 1, cap: store.schedule.maximum, unitRandom: random())
            try await store.deferInbox(stored.id, owner: configuration.owner, until: clock.now().addingTimeInterval(wait))
            return Settled()
        }
        guard outcome == .applied else { return Settled(marks: [InboxMark(id: stored.id, outcome: outcome)]) }
        state.withLock { $0.counters.inboxProcessed += 1 }
        return Settled(counted: 1)
    }

    /// Attempts after which a delivery that cannot be applied is marked processed with its reason
    /// (about a day of backoff at the default poll maximum).
    static let inboxMaxAttempts = 60

    /// The wait before a delivery that could not be applied is tried again: 2 s doubling per
    /// attempt, capped at `cap`, jittered over its upper half.
    static func inboxRetryDelay(attempts: Int, cap: TimeInterval, unitRandom: Double) -> TimeInterval {
        let ceiling = min(max(cap, 2), 2 * pow(2, Double(min(max(attempts - 1, 0), 30))))
        return max(1, ceiling * (0.5 + 0.5 * min(max(unitRandom, 0), 1)))
    }

    /// How the delivery ended, or nil when it must wait and be tried again.
    private func process(_ stored: StoredDelivery, apiFailed: RoundFlag) async -> InboxOutcome? {
        let delivery = stored.delivery
        var log = logger
        log[metadataKey: "request_id"] = "\(delivery.requestID ?? "-")"
        // The hint admission decoded and the row keeps; a row stored without one (before the
        // inbox kept hints) is decoded here.
        var hint: WebhookHint
        var bookUUID = delivery.bookUUID
        var bookPK = delivery.bookPK
        if let stored = delivery.hint {
            hint = stored
        } else {
            guard let decoded = try? DecodedWebhook.decode(delivery.body) else { return .undecodable }
            hint = decoded.hint
            bookUUID = bookUUID ?? decoded.bookUUID
            bookPK = bookPK ?? decoded.bookPK
        }
        hint.authenticated = delivery.authenticated
        do {
            var uuid = bookUUID
            var learned: (result: BookStatusResult, at: Date)?
            if uuid == nil, let pk = bookPK {
                uuid = try await store.uuid(forPK: pk) ?? state.withLock { $0.uuidsByPK[pk] }
                if uuid == nil {
                    // Not known here: one status call by pk tells the uuid (and the status itself).
                    guard !apiFailed.isSet else { return nil }
                    let result: BookStatusResult
                    do {
                        result = try await client.bookStatus(pk: pk, priority: .urgent)
                    } catch let error as OcrolusError where error.kind != .permanent {
                        apiFailed.set()
                        throw error
                    }
                    learned = (result, clock.now())
                    uuid = result.uuid
                    recordPoll(.webhookHint)
                    // Only an answer that names the pk asked (an answer without one proves nothing).
                    if let answered = result.uuid, result.pk == pk {
                        state.withLock { state in
                            if state.uuidsByPK.count >= Self.pkCacheCapacity { state.uuidsByPK.removeAll() }
                            state.uuidsByPK[pk] = answered
                        }
                    }
                }
            }
            guard let uuid else { return .unresolved(detail: nil) }
            log[metadataKey: "book_uuid"] = "\(uuid)"
            let now = clock.now()
            // Auto-track: a Book first seen here is tracked and given its hint in one transaction.
            let source = HintDelivery(inboxRow: stored.id, trackUnknown: configuration.autoTrack)
            let outcome = try await applyObserved(.webhook(hint, source), to: uuid, at: now)
            if outcome == nil {
                // Untracked by the operator: stored and counted, never tracked again by a webhook.
                if try await store.isUntracked(uuid) { return untrackedDelivery(log) }
                return .ignored
            }
            if outcome?.created == true {
                state.withLock { $0.counters.autoTracked += 1 }
                log.info("auto-tracking a Book first seen in a webhook")
            }
            if let learned {
                let answer = PollAnswer(takenAt: learned.result.requestedAt ?? learned.at, bookName: learned.result.name)
                try await applyObserved(.snapshot(learned.result.snapshot, answer), to: uuid, at: now)
            }
            log.debug("webhook applied", metadata: ["event": "\(delivery.event)"])
            return .applied
        } catch let error as StoreError where error.isDuplicate {
            return .processedElsewhere  // another replica marked the row first
        } catch  where Task.isCancelled {
            return nil  // shutdown, whatever the error: not a failure to log (`settle` leaves the row claimed)
        } catch {
            if let error = error as? OcrolusError, error.kind == .permanent {
                return .unresolved(detail: "\(error)")
            }
            log.warning("webhook could not be applied yet; will retry", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private func untrackedDelivery(_ log: Logger) -> InboxOutcome {
        metrics.untrackedWebhook()
        log.info("webhook about an untracked Book stored, not applied")
        return .untracked
    }
}
