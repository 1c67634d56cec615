import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI

extension Watcher {
    /// Claims and works the analytics jobs due now, at most `limit` (the caller's loop comes back
    /// at once); returns how many were worked.
    @discardableResult
    public func runAnalytics(limit: Int = 256) async throws -> Int {
        try await store.rearmExpiredLeases(now: clock.now())
        var total = 0
        while total < limit {
            try Task.checkCancellation()
            var jobs: [ClaimedJob] = []
            for _ in 0..<configuration.jobConcurrency {
                guard let job = try await store.claimAnalyticsJob(owner: configuration.owner, now: clock.now(), lease: configuration.lease)
                else { break }
                jobs.append(job)
            }
            guard !jobs.isEmpty else { return total }
            await withTaskGroup(of: Void.self) { group in
                for job in jobs { group.addTask { await self.work(job) } }
            }
            total += jobs.count
        }
        return total
    }

    private func work(_ job: ClaimedJob) async {
        var log = logger
        log[metadataKey: "book_uuid"] = "\(job.bookUUID)"
        log[metadataKey: "generation"] = "\(job.generation)"
        do {
            if try await confirmFirst(job) {
                log.debug("analytics wait for a fresh status poll (the Book may have reopened unseen)")
                return
            }
            let stored = try await store.storedEndpoints(job.bookUUID, generation: job.generation)
            let remaining = configuration.analytics.filter { !stored.contains($0.rawValue) }
            guard !remaining.isEmpty else {
                try await finish(job, with: [], log: log)
                return
            }
            for (index, endpoint) in remaining.enumerated() {
                switch try await client.analytics(uuid: job.bookUUID, endpoint: endpoint, priority: .urgent) {
                case .notReady(let retryAfter):
                    recordNotReady()
                    let wait = configuration.analyticsRetry.delay(afterAttempt: job.attempts, retryAfter: retryAfter, unitRandom: random())
                    _ = try await store.apply(.analytics(generation: job.generation, .notReady), to: job.bookUUID, at: clock.now(),
                                              options: options(retryAt: clock.now().addingTimeInterval(max(wait, 1))))
                    log.debug("analytics not ready yet", metadata: ["retry_in_s": "\(Int(wait))"])
                    return
                case .ready(let body):
                    let result = AnalyticsResult(bookUUID: job.bookUUID, generation: job.generation, endpoint: endpoint.rawValue,
                                                 body: body, retrievedAt: clock.now())
                    if index == remaining.count - 1 {
                        try await finish(job, with: [result], log: log)
                    } else {
                        do { try await store.storeAnalyticsResult(result) } catch let error as StoreError where error.isDuplicate {}
                    }
                }
            }
        } catch is CancellationError {
            // Shutting down: the lease is left to the next start, which re-arms it (no attempt lost).
            return
        } catch let error as OcrolusError where error.kind == .permanent {
            recordAnalyticsError(final: true)
            log.error("analytics failed for good", metadata: ["error": "\(error)"])
            _ = try? await store.apply(.analytics(generation: job.generation, .permanentError(error.description)), to: job.bookUUID,
                                       at: clock.now(), options: options())
        } catch {
            let ocrolus = error as? OcrolusError
            recordAnalyticsError(final: job.attempts >= configuration.analyticsRetry.maxAttempts)
            if job.attempts >= configuration.analyticsRetry.maxAttempts {
                let reason = "gave up after \(job.attempts) attempts: \(error)"
                log.error("analytics failed for good", metadata: ["error": "\(reason)"])
                _ = try? await store.apply(.analytics(generation: job.generation, .permanentError(reason)), to: job.bookUUID,
                                           at: clock.now(), options: options())
                return
            }
            let wait = configuration.analyticsRetry.delay(afterAttempt: job.attempts, retryAfter: ocrolus?.retryAfter, unitRandom: random())
            log.warning("analytics attempt failed; retrying", metadata: ["error": "\(error)", "retry_in_s": "\(Int(wait))"])
            _ = try? await store.apply(.analytics(generation: job.generation, .transientError(String(describing: error))), to: job.bookUUID,
                                       at: clock.now(), options: options(retryAt: clock.now().addingTimeInterval(max(wait, 1))))
        }
    }

    /// Retrieval acts on a fresh view of the Book: when webhooks are not trusted (silent or lossy)
    /// and the last status poll is older than twice the poll minimum (the job waited on 425s, errors
    /// or a dead replica's lease), the Book may have reopened unseen, and a 200 now would be the next
    /// generation's analytics. Then an urgent poll is requested and the job put back for a moment;
    /// the poll either confirms the finish or supersedes the job. Trusted webhooks would have
    /// announced a reopen, so they cost no call. Answers true when the job was put back.
    private func confirmFirst(_ job: ClaimedJob) async throws -> Bool {
        let current = options()
        guard current.webhooksSilent, let record = try await store.book(job.bookUUID) else { return false }
        let now = clock.now()
        let freshness = 2 * store.schedule.minimum
        if let last = record.machine.lastSnapshotAt, now.timeIntervalSince(last) <= freshness { return false }
        try await store.requestPoll(job.bookUUID, at: now, reason: .confirm)
        var retry = current
        retry.retryAt = now.addingTimeInterval(max(1, store.schedule.minimum / 4))
        _ = try await store.apply(.analytics(generation: job.generation, .notReady), to: job.bookUUID, at: now, options: retry)
        return true
    }

    /// Stores the last result together with the job's completion and the Book's, in one transaction.
    private func finish(_ job: ClaimedJob, with results: [AnalyticsResult], log: Logger) async throws {
        let outcome = try await store.apply(.analytics(generation: job.generation, .stored), to: job.bookUUID, at: clock.now(),
                                            options: options(results: results))
        if outcome?.actions.contains(.notifyRetrieved(generation: job.generation)) == true {
            recordRetrieval(job)
            log.info("analytics retrieved", metadata: ["endpoints": "\(configuration.analytics.map(\.rawValue).joined(separator: ","))"])
        }
    }
}
