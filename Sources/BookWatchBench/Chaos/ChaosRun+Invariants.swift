import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import OcrolusSimulator
import Synchronization

/// The invariants, read from the simulator and the store.
extension ChaosRun {
    // MARK: invariants

    func checkSafety() async throws -> ChaosViolation? {
        if let pending = pendingViolation { return pending }
        let now = kernel.now
        // The rate limit: every call a replica sent, in Ocrolus's time, conforms to its limiter.
        for call in kernel.takeSent() {
            callSeenAt[call.id] = step
            log.count("call: sent")
            if rateChecks[call.replica]?.admit(call.sentAt.timeIntervalSince(world.simulation.start)) == false {
                return ChaosViolation(
                    invariant: "the rate limit is never exceeded",
                    detail:
                        "r\(call.replica) sent \(Self.describe(call.request)) at \(log.stamp(call.sentAt)) beyond \(world.rate)/s burst \(Int(world.burst))",
                    book: Self.book(of: call.request)
                )
            }
        }
        // Only a changed row changes what the rest reads: a step whose store calls changed none
        // (most of a watcher's idle turns are claims that find nothing) is not checked again.
        let changes = rowsChanged?() ?? nil ?? log.storeCalls
        guard changes != checkedAtStoreChanges else { return nil }
        checkedAtStoreChanges = changes
        let records = try await store.watchedBooks()
        let slack = world.schedule.maximum + world.lease + kernel.largestOffset + 5
        for record in records {
            let uuid = record.uuid
            if everTracked[uuid] == nil { everTracked[uuid] = now }
            if operatorUntracked.contains(uuid) {
                return ChaosViolation(
                    invariant: "an untracked Book stays untracked",
                    detail: "\(uuid) is tracked again (\(record.phase.rawValue))",
                    book: uuid
                )
            }
            if record.phase == .deleted {
                let truth = simulation.scenario.books.first { $0.uuid == uuid }
                let t = now.timeIntervalSince(world.simulation.start)
                if truth.map({ !$0.isDeleted(at: t) }) ?? false {
                    return ChaosViolation(
                        invariant: "a Book marked deleted is deleted at Ocrolus",
                        detail: "\(uuid) is not deleted at Ocrolus",
                        book: uuid
                    )
                }
            }
            // Not forgotten: a Book still processing is polled within the maximum; one retrieving
            // has its job running or due within the retry cap (its polls only watch for a reopen,
            // which the job's view after catches), or a poll due.
            let pollDue = record.nextPollAt.map { $0 <= now.addingTimeInterval(slack) } ?? false
            if [.tracking, .processing].contains(record.phase), !pollDue {
                return ChaosViolation(
                    invariant: "a tracked, unfinished Book has a poll due within the maximum",
                    detail: "\(uuid) is \(record.phase.rawValue) with its next poll \(record.nextPollAt.map(log.stamp) ?? "never")",
                    book: uuid
                )
            }
            if record.phase == .retrieving, !pollDue {
                let cap = WatcherConfiguration().analyticsRetry.cap + slack
                let jobDue =
                    record.job.map { job in
                        job.generation == record.generation
                            && (job.state == .running || (job.state == .pending && (job.dueAt.map { $0 <= now.addingTimeInterval(cap) } ?? false)))
                    } ?? false
                if !jobDue {
                    return ChaosViolation(
                        invariant: "a retrieving Book has its job or a poll due",
                        detail:
                            "\(uuid) job \(record.job.map { "\($0.generation) \($0.state.rawValue) due \($0.dueAt.map(log.stamp) ?? "never")" } ?? "none"), "
                            + "next poll \(record.nextPollAt.map(log.stamp) ?? "never")",
                        book: uuid
                    )
                }
            }
        }
        for uuid in operatorUntracked where try await !store.isUntracked(uuid) {
            return ChaosViolation(invariant: "an untracked Book stays untracked", detail: "\(uuid) lost its tombstone", book: uuid)
        }
        // At most one analytics 200 per (Book, Ocrolus generation, endpoint) stored.
        let counts = try await store.analyticsCounts()
        let supersessions = log.counts["scenario 2: a reopen superseded a job"] ?? 0
        let complete = counts.jobs["complete"] ?? 0
        if counts.results != resultCount || supersessions != checkedSupersessions || complete != checkedCompleteJobs {
            resultCount = counts.results
            checkedSupersessions = supersessions
            checkedCompleteJobs = complete
            for book in simulation.scenario.books {
                var seen: Set<String> = []
                // Results of a generation whose job has not completed are provisional: the view
                // after may still supersede the generation and delete them, and the export never
                // shows them (`analyticsResults(retrievedSince:)`). Pages fetched across a reopen
                // are such a case (seed 1955): checked once the job completes.
                let provisional = Set(
                    try await store.jobHistory(book.uuid).filter { ["pending", "running", "failed"].contains($0.state) }.map(\.generation)
                )
                for result in try await store.analyticsResults(for: book.uuid, endpoint: nil) {
                    guard let generation = generation(of: result.body) else {
                        if provisional.contains(result.generation) { continue }
                        return ChaosViolation(
                            invariant: "a stored result is one Ocrolus generation's",
                            detail: "\(book.uuid): \(result.endpoint) of bookwatch generation \(result.generation) mixes pages of several",
                            book: book.uuid
                        )
                    }
                    let key = "generation \(generation) of \(result.endpoint)"
                    if !seen.insert(key).inserted {
                        return ChaosViolation(
                            invariant: "at most one analytics 200 per (Book, generation, endpoint) stored",
                            detail: "\(book.uuid): Ocrolus's \(key) stored twice (bookwatch generations \(result.generation) and another)",
                            book: book.uuid
                        )
                    }
                }
            }
        }
        return nil
    }

    /// After the drain: every generation that stayed finished long enough is retrieved, or its
    /// supersession is recorded; nil when all is well.
    func checkLiveness() async throws -> ChaosViolation? {
        // A reopen right after the first trusted retention poll waits for the next one (one
        // maximum later at least); a dead replica's poll claim and job lease each cost a lease.
        // A poll is late in global time by the offset of the clock that set it less that of the
        // clock that reads it: one set by a replica that ran ahead, once that replica is dead or
        // stepped back (while it runs, it polls on its own clock), or read by one that fell
        // behind. Counted once, not per poll.
        let skew = kernel.largestAhead + kernel.largestBehind
        let window = (PollSchedule.trustedRetentionStart + 1) * world.schedule.maximum + 2 * world.lease + 600 + skew
        for book in simulation.scenario.books where !operatorUntracked.contains(book.uuid) && book.deletedAt == nil {
            guard let since = everTracked[book.uuid] else { continue }
            guard let record = try await store.book(book.uuid) else {
                return ChaosViolation(invariant: "a tracked Book is never forgotten", detail: "\(book.uuid) vanished", book: book.uuid)
            }
            let retrieved = Set(
                try await store.analyticsResults(for: book.uuid, endpoint: nil).map {
                    "\(generation(of: $0.body) ?? -1):\($0.endpoint)"
                }
            )
            let jobs = try await store.jobHistory(book.uuid)
            // Pruning deletes finished jobs of earlier generations: the transitions seen count too.
            var excused = max(jobs.filter { $0.state == "superseded" }.count, log.supersessions(book.uuid))
            let t = kernel.now.timeIntervalSince(world.simulation.start)
            for (offset, generation) in book.generations.enumerated() where generation.analyticsReadyAt <= t {
                let number = offset + 1
                let complete = world.endpoints.allSatisfy { retrieved.contains("\(number):\($0.rawValue)") }
                if complete { continue }
                let isLast = number == book.generations.count
                if !isLast {
                    // A Book failed by a confirmed refusal is not looked at again until the
                    // operator's retry in the drain (bookwatch's rule: two refusals a minimum apart
                    // are permanent): only its last generation is owed. One refusal is a doubt
                    // and excuses nothing.
                    if log.failedByRefusal(book.uuid) { continue }
                    // Owed only when it stayed ready long enough while tracked and served.
                    let end = book.documents.map(\.uploadAt).filter { $0 > generation.verifiedAt }.min() ?? t
                    let start = max(generation.analyticsReadyAt, since.timeIntervalSince(world.simulation.start))
                    if served(from: start, to: end, book: book.uuid) < window { continue }
                    // Each owed generation not retrieved needs a supersession of its own.
                    if excused > 0 {
                        excused -= 1
                        continue
                    }
                }
                let phase = record.machine.phase.rawValue
                let reason = record.machine.failureReason.map { " (\($0))" } ?? ""
                return ChaosViolation(
                    invariant: "every generation finished long enough is retrieved or superseded",
                    detail: "\(book.uuid) generation \(number) of \(book.generations.count) ready since \(Int(generation.analyticsReadyAt))s, "
                        + "not retrieved; bookwatch: \(phase)\(reason), jobs \(jobs.map { "\($0.generation):\($0.state)" })",
                    book: book.uuid
                )
            }
        }
        return nil
    }

    /// Seconds of [start, end] (from the run's start) with some replica up and, for `book`, the
    /// Book tracked (the spans the operator had it untracked are not served).
    func served(from start: Double, to end: Double, book: BookUUID? = nil) -> Double {
        guard end > start else { return 0 }
        let origin = world.simulation.start
        let untracked = book.map { untrackedSpans[$0] ?? [] } ?? []
        let spans = (downtime + (downSince.map { [($0, kernel.now)] } ?? []) + untracked)
            .map { (max(start, $0.0.timeIntervalSince(origin)), min(end, $0.1.timeIntervalSince(origin))) }
            .filter { $0.0 < $0.1 }
            .sorted { $0.0 < $1.0 }
        // The union of the spans, so a replica down while the Book was untracked counts once.
        var lost = 0.0
        var reach = start
        for (a, b) in spans where b > reach {
            lost += b - max(a, reach)
            reach = b
        }
        return end - start - lost
    }

    // MARK: helpers

    static func book(of request: OutgoingRequest) -> BookUUID? {
        guard let components = URLComponents(string: request.url) else { return nil }
        if let uuid = components.queryItems?.first(where: { $0.name == "book_uuid" })?.value { return BookUUID(uuid) }
        return components.path.split(separator: "/").lazy.compactMap { BookUUID(String($0)) }.first
    }

    static func describe(_ request: OutgoingRequest) -> String {
        guard let components = URLComponents(string: request.url) else { return request.url }
        if components.path.hasSuffix("/oauth/token") { return "token" }
        if components.path == "/v1/book/status" { return components.query?.hasPrefix("pk=") == true ? "status by pk" : "status" }
        return components.path.split(separator: "/").last.map { "analytics \($0)" } ?? components.path
    }

    /// `ocrolusGeneration`, read once per body: the duplicate check reads every stored result
    /// each time the results change.
    func generation(of body: [UInt8]) -> Int? {
        if let known = generations[body] { return known }
        let generation = Self.ocrolusGeneration(body)
        generations[body] = generation
        return generation
    }

    static func ocrolusGeneration(_ body: [UInt8]) -> Int? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        if let pages = object["pages"] as? [[String: Any]] {
            // A paged result: every page must be the same generation's.
            let generations = Set(pages.map { (($0["response"] as? [String: Any]) ?? $0)["generation"] as? Int })
            return generations.count == 1 ? generations.first ?? nil : nil
        }
        let response = object["response"] as? [String: Any] ?? object
        return response["generation"] as? Int
    }
}

/// What each replica's chains did last (units of work).
final class ChainResults: Sendable {
    let units = Mutex<[ChainKey: Int]>([:])
}

/// One replica's chain of one kind (a key, not a string: formatting an enum is a reflection).
struct ChainKey: Hashable, Sendable {
    let replica: Int
    let kind: ChainKind
}

/// GCRA conformance in Ocrolus's time: the calls one limiter let out (reset on a forward clock
/// step, which refills a bucket legitimately once).
struct GCRACheck {
    let rate: Double
    let burst: Double
    var tat: Double?

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    mutating func reset() { tat = nil }

    mutating func admit(_ t: Double) -> Bool {
        let interval = 1 / rate
        let current = tat ?? t
        if t < current - (burst - 1) * interval - 1e-3 { return false }
        tat = max(current, t) + interval
        return true
    }
}
