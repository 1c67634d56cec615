import BookWatchClocks
import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI

extension Watcher {
    /// Claims and polls the Books due now (from the `next_poll_at` index), at most
    /// `pollConcurrency` at once, never the same Book twice at once (across replicas: the claim),
    /// and at most `limit` in all (under a backlog the
    /// caller's loop comes back at once, and a virtual-time run can stop at its deadline);
    /// returns how many polls were made.
    @discardableResult
    public func pollDue(limit: Int = 256) async throws -> Int {
        await refreshSilence()
        var total = 0
        while total < limit {
            // Shutdown: stop taking work (a cancelled poll fails at once and would be due again).
            try Task.checkCancellation()
            if total > 0 { await sampleArrivals(now: clock.now()) }  // a long round keeps the count fresh
            let batch = try await store.claimDuePolls(
                now: clock.now(),
                limit: configuration.pollConcurrency,
                lease: configuration.lease,
                excluding: inFlightBooks
            )
            guard !batch.isEmpty else { return total }
            await withTaskGroup(of: Void.self) { group in
                for poll in batch {
                    group.addTask { await self.poll(poll) }
                }
            }
            total += batch.count
        }
        return total
    }

    private func poll(_ due: DuePoll) async {
        let uuid = due.bookUUID
        guard beginPoll(uuid) else { return }
        defer { endPoll(uuid) }
        var log = logger
        log[metadataKey: "book_uuid"] = "\(uuid)"
        let reason = due.reason ?? .scheduled
        let priority: RequestPriority = reason == .scheduled ? .background : .urgent
        let asked = clock.now()
        do {
            let result = try await client.bookStatus(uuid: uuid, priority: priority)
            recordPoll(reason)
            metrics.unknownStatuses(result.snapshot.unknownStatusCount)
            // Dated by its question: an answer asked before what the Book already knows is stale.
            let answer = PollAnswer(takenAt: result.requestedAt ?? asked, claim: due.claimedAt, bookName: result.name)
            let outcome = try await applyObserved(.snapshot(result.snapshot, answer), to: uuid)
            if let outcome {
                for case .warn(let message) in outcome.actions { log.warning("\(message)") }
                if outcome.actions.contains(where: { if case .openAnalyticsJob = $0 { true } else { false } }) {
                    log.info("all documents finished; analytics job opened", metadata: ["generation": "\(outcome.machine.generation)"])
                }
            }
        } catch  where error is CancellationError || Task.isCancelled {
            // Shutting down (whatever error the cut-short call ended in): nothing failed; the
            // poll stays due and is made after the restart.
            return
        } catch let error as OcrolusError where error.kind == .permanent {
            // Refused for good (403/2102...): asking again would be refused again.
            recordPollFailure()
            metrics.pollFailed(.refused)
            do {
                let answer = PollAnswer(takenAt: asked, claim: due.claimedAt)
                let outcome = try await applyObserved(.pollRefused(error.description, answer), to: uuid)
                // A first refusal is a doubt, and a complete Book keeps its analytics and its
                // retention polls: warnings. Only a confirmed refusal fails the Book.
                if outcome?.machine.phase == .failed, outcome?.actions.contains(.schedulePoll(.never)) == true {
                    log.error("status poll refused; the Book is marked failed", metadata: ["error": "\(error)"])
                } else {
                    log.warning("status poll refused", metadata: ["error": "\(error)", "phase": "\(outcome?.machine.phase.rawValue ?? "untracked")"])
                }
            } catch {
                try? await store.deferPoll(
                    uuid,
                    until: clock.now().addingTimeInterval(pollRetryDelay(failures: due.failures + 1, retryAfter: nil)),
                    keepUrgent: false
                )
            }
        } catch {
            recordPollFailure()
            metrics.pollFailed(.transient)
            let wait = pollRetryDelay(failures: due.failures + 1, retryAfter: (error as? OcrolusError)?.retryAfter)
            log.warning(
                "status poll failed; retrying later",
                metadata: ["error": "\(error)", "retry_in_s": "\(Int(wait))", "failures": "\(due.failures + 1)"]
            )
            // Urgent for the first retry only: a Book that keeps failing must not starve the others.
            try? await store.deferPoll(uuid, until: clock.now().addingTimeInterval(wait), keepUrgent: due.failures == 0)
        }
    }

    /// The wait after a Book's `failures`-th failed poll in a row (`PollSchedule.retryDelay`).
    func pollRetryDelay(failures: Int, retryAfter: TimeInterval?) -> TimeInterval {
        store.schedule.retryDelay(failures: failures, base: configuration.pollRetry.base, retryAfter: retryAfter, unitRandom: random())
    }
}
