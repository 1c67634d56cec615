import BookWatchClocks
import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI

extension Watcher {
    /// Claims and works the analytics jobs due now, at most `limit` (the caller's loop comes back
    /// at once); returns how many were worked.
    ///
    /// A window of `jobConcurrency` jobs, not batches: a slot freed by one job is filled at once,
    /// and while a slot is free the store is asked again every `pickupTick`, so a job made due
    /// during a slow call (an analytics-ready webhook, a confirming answer) does not wait for the
    /// calls in flight to return.
    @discardableResult
    public func runAnalytics(limit: Int = 256) async throws -> Int {
        try await store.rearmExpiredLeases(now: clock.now())
        let clock = clock
        return try await withThrowingTaskGroup(of: Bool.self) { group in
            var total = 0
            var running = 0
            var ticking = false
            var failure: (any Error)?
            defer { group.cancelAll() }
            while true {
                // A failed claim stops new claims; the jobs in hand still finish (on shutdown they
                // are cancelled with the group: each leaves its lease to the next start).
                while failure == nil, running < configuration.jobConcurrency, total < limit {
                    do {
                        try Task.checkCancellation()
                        guard
                            let job = try await store.claimAnalyticsJob(
                                owner: configuration.owner,
                                now: clock.now(),
                                lease: configuration.lease
                            )
                        else { break }
                        group.addTask {
                            await self.work(job)
                            return true
                        }
                        running += 1
                        total += 1
                    } catch {
                        failure = error
                    }
                }
                if running == 0 {
                    if let failure { throw failure }
                    return total
                }
                if failure == nil, running < configuration.jobConcurrency, total < limit, !ticking {
                    ticking = true
                    group.addTask {
                        try? await clock.sleep(for: Self.pickupTick)
                        return false
                    }
                }
                guard let workedJob = try await group.next() else { return total }
                if workedJob { running -= 1 } else { ticking = false }
            }
        }
    }

    /// How often a free slot of `runAnalytics` asks the store for a job made due meanwhile.
    static let pickupTick: TimeInterval = 1

    private func work(_ job: ClaimedJob) async {
        var log = logger
        log[metadataKey: "book_uuid"] = "\(job.bookUUID)"
        log[metadataKey: "generation"] = "\(job.generation)"
        do {
            try await attempt(job, log: log)
        } catch  where error is CancellationError || Task.isCancelled {
            // Shutting down, whatever error the cut-short attempt ended in (the client and the
            // stores say `CancellationError`; anything else may not): not an attempt that failed,
            // so nothing is counted, given up or rescheduled (a write now would be refused, and
            // counted again after the restart); the lease is left to the next start.
            return
        } catch let error as StoreError where error.isLostClaim {
            // Another worker owns the job now (the lease lapsed) or it was superseded: whatever this
            // worker learnt is discarded, so nothing is stored or counted twice.
            metrics.lateResult()
            log.notice("analytics claim lost; this worker's outcome is discarded", metadata: ["detail": "\(error)"])
        } catch let error as OcrolusError where error.kind == .permanent {
            recordAnalyticsError(final: true)
            log.error("analytics failed for good", metadata: ["error": "\(error)"])
            await record(job, .permanentError(error.description), log: log)
        } catch {
            let errors = job.attempts + 1
            if let reason = giveUpReason(job, errors: errors, error: error) {
                recordAnalyticsError(final: true)
                log.error("analytics failed for good", metadata: ["error": "\(reason)"])
                await record(job, .permanentError(reason), log: log)
                return
            }
            recordAnalyticsError(final: false)
            let wait = configuration.analyticsRetry.delay(
                afterAttempt: errors,
                retryAfter: (error as? OcrolusError)?.retryAfter,
                unitRandom: random()
            )
            log.warning("analytics attempt failed; retrying", metadata: ["error": "\(error)", "retry_in_s": "\(Int(wait))"])
            await record(job, .transientError(String(describing: error)), retryAt: clock.now().addingTimeInterval(max(wait, 1)), log: log)
        }
    }

    /// One attempt: a fresh view first when webhooks are not trusted, then every endpoint not
    /// stored yet, each stored under the job's claim, then the view after, then the completion.
    private func attempt(_ job: ClaimedJob, log: Logger) async throws {
        if let reason = giveUpReason(job, errors: job.attempts, error: nil) {
            log.error("analytics failed for good", metadata: ["error": "\(reason)"])
            recordAnalyticsError(final: true)
            try await apply(job, .permanentError(reason))
            return
        }
        if !job.viewConfirmed, try await confirmFirst(job) {
            log.debug("analytics wait for a fresh status answer (the Book may have reopened unseen)")
            return
        }
        let stored = try await store.storedEndpoints(job.bookUUID, generation: job.generation)
        let remaining = configuration.analytics.filter { !stored.contains($0.rawValue) }
        for endpoint in remaining {
            if endpoint.isPaged {
                guard try await fetchPages(job, endpoint, log: log) else { return }
                continue
            }
            guard let body = try await fetchReady(job, endpoint, page: nil, log: log) else { return }
            let result = AnalyticsResult(
                bookUUID: job.bookUUID,
                generation: job.generation,
                endpoint: endpoint.rawValue,
                body: body,
                retrievedAt: clock.now()
            )
            try await keepAnswered { [store] in try await store.storeAnalyticsResult(result, claim: job.claim) }
        }
        guard try await viewAfterAgrees(job, log: log) else { return }
        try await finish(job, log: log)
    }

    /// One analytics call under the job's claim (renewed just before it is sent); nil when
    /// Ocrolus answered "not ready", and the job was put back to wait.
    func fetchReady(_ job: ClaimedJob, _ endpoint: AnalyticsEndpoint, page: AnalyticsPageRequest?, log: Logger) async throws -> [UInt8]? {
        let renew: @Sendable () async throws -> Void = { try await self.renewLease(job) }
        let answer =
            if let page {
                try await client.analytics(uuid: job.bookUUID, endpoint: endpoint, page: page, priority: .retrieval, beforeSend: renew)
            } else {
                try await client.analytics(uuid: job.bookUUID, endpoint: endpoint, priority: .retrieval, beforeSend: renew)
            }
        switch answer {
        case .ready(let body):
            return body
        case .notReady(let retryAfter):
            recordNotReady()
            // Not ready midway through the pages: the analytics are being made again (a reopen
            // whose upload no answer showed yet). The pages already stored may be the previous
            // generation's and the rest would be the next one's (found by the chaos search, seed
            // 109): all of them are fetched again once ready.
            if let page, page.offset > 0 {
                try await store.discardAnalyticsPages(job.bookUUID, generation: job.generation, endpoint: endpoint.rawValue, claim: job.claim)
                log.notice(
                    "analytics not ready midway through the pages; they are fetched again from the first",
                    metadata: ["page_offset": "\(page.offset)"]
                )
            }
            // Waiting is not failing: the wait follows the job's age (not a count of tries),
            // and the next status answer confirming the finish, or an analytics-ready webhook,
            // makes the job due at once.
            // Silent webhooks (stopped, or suspected so) will not say when the analytics are
            // ready: the wait is capped at twice the poll minimum, as a processing Book's polls are.
            let untrusted = webhooksStopped
            let wait = Self.notReadyDelay(
                age: clock.now().timeIntervalSince(job.openedAt),
                retryAfter: retryAfter,
                cap: untrusted ? min(configuration.analyticsRetry.cap, 2 * store.schedule.minimum) : configuration.analyticsRetry.cap,
                unitRandom: random()
            )
            try await apply(job, .notReady, retryAt: clock.now().addingTimeInterval(wait), awaitingView: true)
            log.debug("analytics not ready yet", metadata: ["retry_in_s": "\(Int(wait))", "page_offset": "\(page?.offset ?? 0)"])
            return nil
        }
    }

    /// The view after: a status answer asked after the last analytics 200 shows which documents
    /// those analytics may cover. Applied like any answer, it supersedes the job when it shows a
    /// document the generation did not have, and a superseded generation's results are deleted
    /// with it: they may already be the next generation's (a document uploaded and processed
    /// while the job waited, its webhook lost or not yet applied; found by the chaos search). The
    /// generation completes (and is notified) only after this agrees; results are stored as they
    /// come, so a failed view after costs a status call again, not the fetches. Answers whether
    /// the job is still the generation's live one.
    private func viewAfterAgrees(_ job: ClaimedJob, log: Logger) async throws -> Bool {
        let asked = clock.now()
        let after: BookStatusResult
        do {
            after = try await client.bookStatus(uuid: job.bookUUID, priority: .retrieval)
        } catch let error as OcrolusError where error.kind == .permanent {
            // Refused: a refusal of the status call, not of the analytics (one is a doubt, as for
            // any poll). The job waits for the next answer, which confirms the refusal (the job
            // fails with it) or shows the Book (the job is due at once), without counting an error.
            recordPoll(.confirm)
            recordPollFailure()
            metrics.pollFailed(.refused)
            let outcome = try await applyObserved(.pollRefused(error.description, PollAnswer(takenAt: asked)), to: job.bookUUID)
            log.warning("the view after was refused", metadata: ["error": "\(error)", "phase": "\(outcome?.machine.phase.rawValue ?? "untracked")"])
            if let machine = outcome?.machine, machine.phase == .retrieving, machine.generation == job.generation {
                try await apply(job, .notReady, retryAt: clock.now().addingTimeInterval(store.schedule.confirmFreshness), awaitingView: true)
            }
            return false
        }
        recordPoll(.confirm)
        // Gone now shows no new Document: the analytics just answered 200, so they are this
        // generation's. Completing first keeps them as such; the next poll sees the deletion (a
        // Book marked deleted while complete comes back in the same generation, not a new one
        // that would fetch them again).
        if case .gone = after.snapshot { return true }
        let answer = PollAnswer(takenAt: after.requestedAt ?? asked, bookName: after.name)
        let outcome = try await applyObserved(.snapshot(after.snapshot, answer), to: job.bookUUID)
        guard let machine = outcome?.machine, machine.phase == .retrieving, machine.generation == job.generation else {
            metrics.lateResult()
            log.notice(
                "analytics dropped: the Book changed while they were fetched; the next generation retrieves them",
                metadata: ["phase": "\(outcome?.machine.phase.rawValue ?? "untracked")"]
            )
            return false
        }
        // It confirms by what it shows, not by the machine being unchanged: an answer dropped as
        // older than the last applied one (its replica's clock behind another's) left the machine
        // as it was, and completing on it kept a paged result fetched across a reopen (found by
        // the chaos search, seed 1955: a replica's clock 600 s ahead); one showing a covered
        // document unfinished is held back as a doubt, the machine unchanged too. Either way the
        // job waits for the next view; a dropped answer that shows the generation confirms it.
        // A reopen doubt still open (an answer newer than this one showed a covered document
        // unfinished) is not settled by an answer the store could not apply.
        guard machine.doubt?.kind != .reopen, machine.showsFinishedGeneration(after.snapshot) else {
            // Held back as a doubt, or dropped as older than the last applied answer (replicas'
            // clocks disagreeing) while showing a change the store could not apply.
            log.warning("the view after does not show the generation finished as it was; the job waits for the next answer")
            try await apply(job, .notReady, retryAt: clock.now().addingTimeInterval(store.schedule.confirmFreshness), awaitingView: true)
            return false
        }
        return true
    }

    /// How long a job waits after a 425: an eighth of its age, between 2 s and `cap`, with a
    /// `Retry-After` as the lower bound (jittered by up to a quarter). Early 425s are retried within
    /// seconds; a job that has waited an hour is asked every few minutes, not every few seconds.
    static func notReadyDelay(age: TimeInterval, retryAfter: TimeInterval?, cap: TimeInterval, unitRandom: Double) -> TimeInterval {
        let base = min(cap, max(2, age / 8))
        let jittered = base * (0.75 + 0.25 * min(max(unitRandom, 0), 1))
        return max(jittered, retryAfter ?? 0, 1)
    }

    /// The reason to give up, if any: the job is older than `analyticsGiveUp`, or it met
    /// `analyticsRetry.maxAttempts` real errors (waiting on 425 is neither).
    func giveUpReason(_ job: ClaimedJob, errors: Int, error: (any Error)?) -> String? {
        let age = clock.now().timeIntervalSince(job.openedAt)
        let cause = error.map { ": \($0)" } ?? ""
        if age >= configuration.analyticsGiveUp {
            return "gave up after \(Int(age / 3600)) h waiting for analytics (\(errors) errors)\(cause)"
        }
        if error != nil && errors >= configuration.analyticsRetry.maxAttempts {
            return "gave up after \(errors) errors\(cause)"
        }
        return nil
    }

    /// Renews the job's lease to a full one, fenced by the claim: `.lostClaim` when another worker
    /// owns the job now. Run just before each analytics request is sent, after any limiter wait, so
    /// a call that waited out a long `Retry-After` pause is made only by the job's owner, with the
    /// whole lease ahead of it.
    private func renewLease(_ job: ClaimedJob) async throws {
        let until = clock.now().addingTimeInterval(configuration.lease)
        guard try await store.renewJobLease(job.claim, bookUUID: job.bookUUID, generation: job.generation, until: until) else {
            throw StoreError(.lostClaim, subject: "analytics job \(job.bookUUID) generation \(job.generation)", detail: "lease renewal refused")
        }
    }

    /// Retrieval acts on a fresh view of the Book: when webhooks are not trusted (silent or lossy)
    /// and the last status answer was asked more than twice the poll minimum ago (the job waited
    /// on 425s, errors or a dead replica's lease), the Book may have reopened unseen, and a 200 now
    /// would be the next generation's analytics. Then an urgent poll is requested and the job waits
    /// for its answer: an answer confirming the finish makes it due at once (`confirmAnalyticsJob`),
    /// a reopen supersedes it; a timer of twice the minimum is the fallback. Trusted webhooks would
    /// have announced a reopen, so they cost no call. Answers true when the job was put back.
    private func confirmFirst(_ job: ClaimedJob) async throws -> Bool {
        let current = options()
        guard current.webhooksSilent, let record = try await store.book(job.bookUUID) else { return false }
        let now = clock.now()
        let freshness = store.schedule.confirmFreshness
        if let last = record.machine.lastSnapshotAt, now.timeIntervalSince(last) <= freshness { return false }
        // Waiting first, then the poll: an answer that came before the wait was recorded would
        // find no job waiting for it.
        try await apply(job, .notReady, retryAt: now.addingTimeInterval(max(1, freshness)), awaitingView: true)
        try await store.requestPoll(job.bookUUID, at: now, reason: .confirm)
        return true
    }

    /// Completes the job and the Book (its results are stored already), under the job's claim.
    private func finish(_ job: ClaimedJob, log: Logger) async throws {
        let outcome = try await applyObserved(.analytics(generation: job.generation, .stored, JobReport(claim: job.claim)), to: job.bookUUID)
        if outcome?.actions.contains(.notifyRetrieved(generation: job.generation)) == true {
            recordRetrieval(job)
            log.info("analytics retrieved", metadata: ["endpoints": "\(configuration.analytics.map(\.rawValue).joined(separator: ","))"])
        }
    }

    /// Commits an analytics outcome under the job's claim (throws `.lostClaim` when it is gone).
    private func apply(_ job: ClaimedJob, _ outcome: AnalyticsOutcome, retryAt: Date? = nil, awaitingView: Bool = false) async throws {
        let report = JobReport(claim: job.claim, retryAt: retryAt, awaitingView: awaitingView)
        try await applyObserved(.analytics(generation: job.generation, outcome, report), to: job.bookUUID)
    }

    /// `apply` for the error paths: a lost claim is counted, a store failure logged (the lease then
    /// lapses and the job is re-armed).
    private func record(_ job: ClaimedJob, _ outcome: AnalyticsOutcome, retryAt: Date? = nil, log: Logger) async {
        do {
            try await apply(job, outcome, retryAt: retryAt)
        } catch let error as StoreError where error.isLostClaim {
            metrics.lateResult()
            log.notice("analytics claim lost; this worker's outcome is discarded", metadata: ["detail": "\(error)"])
        } catch {
            log.warning("analytics outcome not recorded; the job comes back when its lease lapses", metadata: ["error": "\(error)"])
        }
    }
}
