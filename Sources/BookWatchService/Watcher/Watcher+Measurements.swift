import BookWatchClocks
import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import Synchronization

/// What the deployment measured (shared by replicas, kept across restarts) and pruning by age.
extension Watcher {
    // MARK: what the deployment measured

    /// Reads the loss estimate and the last webhook the deployment stored (a restart or a new
    /// replica starts from them, not from "lossy, silent since now").
    func readShared(now: Date) async throws {
        let estimate = try await store.sharedState(Self.lossKey).flatMap { try? JSONDecoder().decode(WebhookLossEstimate.self, from: Data($0.utf8)) }
        let last = try await store.sharedState(Self.lastWebhookKey).flatMap(Int64.init).map(Date.init(storageMillis:))
        if let estimate {
            state.withLock { $0.loss = estimate }
            metrics.webhookLoss(estimate.lossRatio ?? 0)
        }
        state.withLock { $0.shared = SharedView(lastWebhookAt: last, readAt: now) }
    }

    func readSharedIfDue(now: Date) async {
        let due = state.withLock { $0.shared.readAt.map { now.timeIntervalSince($0) >= Self.sharedRefresh } ?? true }
        guard due else { return }
        do { try await readShared(now: now) } catch { logger.warning("could not read the shared measurements", metadata: ["error": "\(error)"]) }
    }

    /// Stores when the newest of `deliveries` arrived, if later than what is stored, and which
    /// kinds of event the deployment receives (the loss estimate counts only those).
    func recordWebhooks(_ deliveries: [StoredDelivery]) async {
        await noteReceivedKinds(deliveries)
        guard let newest = deliveries.map(\.delivery.receivedAt).max() else { return }
        let millis = newest.storageMillis
        do {
            _ = try await store.updateSharedState(Self.lastWebhookKey, at: clock.now()) { current in
                String(max(millis, current.flatMap(Int64.init) ?? millis))
            }
            state.withLock { $0.shared.lastWebhookAt = max($0.shared.lastWebhookAt ?? newest, newest) }
        } catch {
            logger.warning("could not store the last webhook time", metadata: ["error": "\(error)"])
        }
    }

    /// Notes in the shared estimate the kinds of event among `deliveries`: at most once a minute
    /// per kind (what the window needs), so a busy inbox does not rewrite the estimate per round.
    func noteReceivedKinds(_ deliveries: [StoredDelivery]) async {
        var newest: [WebhookLossEstimate.Kind: Date] = [:]
        // Ocrolus's test event (`book_pk` 0, no Book) proves nothing about what the registration
        // subscribes: `bookwatch webhooks test` must not make document events look received.
        for stored in deliveries where !(stored.delivery.bookPK == 0 && stored.delivery.bookUUID == nil) {
            let event = stored.delivery.hint?.event ?? WebhookEvent(name: stored.delivery.event)
            guard let kind = WebhookLossEstimate.Kind(receiving: event) else { continue }
            newest[kind] = max(newest[kind] ?? stored.delivery.receivedAt, stored.delivery.receivedAt)
        }
        let known = state.withLock { $0.loss.lastReceived }
        let stale = newest.filter { kind, date in known[kind].map { date.timeIntervalSince($0) >= Self.kindNoteInterval } ?? true }
        guard !stale.isEmpty else { return }
        let local = state.withLock { state in
            for (kind, date) in stale { state.loss.noteReceived(kind, at: date) }
            return state.loss
        }
        do {
            let stored = try await store.updateSharedState(Self.lossKey, at: clock.now()) { current in
                var estimate = current.flatMap { try? JSONDecoder().decode(WebhookLossEstimate.self, from: Data($0.utf8)) } ?? local
                for (kind, date) in stale { estimate.noteReceived(kind, at: date) }
                return (try? String(decoding: JSONEncoder().encode(estimate), as: UTF8.self)) ?? ""
            }
            if let estimate = try? JSONDecoder().decode(WebhookLossEstimate.self, from: Data(stored.utf8)) {
                state.withLock { $0.loss = estimate }
            }
        } catch {
            logger.warning("could not store which webhook kinds arrive", metadata: ["error": "\(error)"])
        }
    }

    /// How often a kind's arrival is written to the shared estimate.
    static let kindNoteInterval: TimeInterval = 60

    // MARK: pruning

    /// Deletes what is older than `retention` (see `BookStore.prune`), at most 1,000 rows of each
    /// kind per call, once per `pruneEvery` (and again at once while a call found a full batch);
    /// answers how many rows went.
    @discardableResult
    public func pruneIfDue() async throws -> Int {
        let now = clock.now()
        let due = state.withLock { $0.lastPruned.map { now.timeIntervalSince($0) >= configuration.pruneEvery } ?? true }
        guard due else { return 0 }
        let batch = 1000
        let counts: PruneCounts
        do {
            counts = try await store.prune(before: now.addingTimeInterval(-configuration.retention), limit: batch)
        } catch {
            state.withLock { $0.lastPruned = now }  // not again every second: at the next interval
            throw error
        }
        let full = max(counts.deliveries, counts.notifications, counts.jobs) >= batch
        state.withLock { $0.lastPruned = full ? nil : now }
        if counts.total > 0 {
            logger.info(
                "pruned old rows",
                metadata: [
                    "deliveries": "\(counts.deliveries)", "notifications": "\(counts.notifications)", "jobs": "\(counts.jobs)",
                ]
            )
        }
        return full ? counts.total : 0
    }
}
