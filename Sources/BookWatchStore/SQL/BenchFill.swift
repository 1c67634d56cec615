import BookWatchCore
import Foundation

/// What `fillForBenchmark` wrote.
public struct BenchFillSummary: Sendable {
    /// Books written.
    public var books = 0
    /// Documents written.
    public var documents = 0
    /// Books by state.
    public var byState: [BookPhase: Int] = [:]
    /// How long the fill took.
    public var seconds: TimeInterval = 0
    /// What the schedules are relative to: the fill's `now` moved on by the time the fill took
    /// (polls and jobs are shifted by it at the end, so nothing is due when the fill returns).
    public var scheduledFrom = Date(timeIntervalSince1970: 0)
}

extension SQLStatementStore {
    /// Fills the store (either kind: the same statements as real transitions, a transaction per
    /// `booksPerTransaction` Books) with `books` tracked Books in a steady-state mix (70 % complete, 20 %
    /// processing, 5 % tracking, 2 % retrieving, 2 % failed, 1 % deleted) and about
    /// `documentsPerBook` Documents each, through the same row writer as real transitions.
    /// Polls are scheduled 1 to 30 minutes after the fill ends (`scheduledFrom`), complete Books
    /// finished over the last 14 days (those older than `retention` are no longer polled), jobs
    /// and results exist for every finished generation. For the scale benchmarks only.
    public func fillForBenchmark(
        books: Int,
        documentsPerBook: Int = 10,
        now: Date,
        seed: UInt64 = 1,
        retention: TimeInterval = 168 * 3600,
        booksPerTransaction: Int = 100
    ) async throws -> BenchFillSummary {
        var summary = BenchFillSummary()
        let started = ContinuousClock.now
        let nowMillis = now.storageMillis
        // PostgreSQL runs each statement as a round trip (about five per Book) under a 10 s
        // per-operation timeout: 100 Books a transaction take well under a second on an idle
        // machine (the conformance test, run beside every other suite on two cores, passes 20).
        let batch = max(1, booksPerTransaction)
        for lower in stride(from: 0, to: books, by: batch) {
            var steps: [SQLStep] = []
            for number in lower..<min(books, lower + batch) {
                // Each Book draws from its own stream: the database does not depend on the batching.
                var rng = SeededRandom(seed: (seed &* 0x2545_F491_4F6C_DD1D) ^ UInt64(number))
                let roll = rng.unit()
                let phase: BookPhase =
                    roll < 0.70
                    ? .complete
                    : roll < 0.90
                        ? .processing
                        : roll < 0.95
                            ? .tracking
                            : roll < 0.97 ? .retrieving : roll < 0.99 ? .failed : .deleted
                var uuidSource = SeededRandom(seed: seed &* 0x9E37_79B9 &+ UInt64(number))
                let uuid = BookUUID(uuidSource.uuid())!  // SeededRandom.uuid() always yields a valid v4 uuid
                let count = phase == .tracking ? 0 : 1 + Int(rng.next() % UInt64(max(1, 2 * documentsPerBook - 1)))
                var documents: [TrackedDocument] = []
                for position in 0..<count {
                    let status: DocumentStatus
                    switch phase {
                    case .processing where position == 0 || rng.unit() < 0.4:
                        status = [.queued, .processing, .verifying, .classified][Int(rng.next() % 4)]
                    case .deleted:
                        status = .deleted
                    default:
                        status = rng.unit() < 0.05 ? .rejected : (rng.unit() < 0.5 ? .completed : .verificationComplete)
                    }
                    documents.append(TrackedDocument(ref: DocumentRef(pk: number * 100 + position), status: status))
                }
                let finishedAt: Date? =
                    [.complete, .retrieving, .failed].contains(phase)
                    ? now.addingTimeInterval(-rng.unit() * 14 * 86_400) : nil
                let machine = BookMachine(
                    uuid: uuid,
                    pk: 1_000_000 + number,
                    phase: phase,
                    generation: 1,
                    lastOpenedGeneration: finishedAt == nil ? 0 : 1,
                    bookStatus: phase == .tracking ? nil : (finishedAt != nil ? .verified : (phase == .deleted ? .deleted : .verifying)),
                    documents: documents,
                    lastWebhookAt: now.addingTimeInterval(-rng.unit() * 3600),
                    lastSnapshotAt: phase == .tracking ? nil : now.addingTimeInterval(-rng.unit() * 1800),
                    finishedAt: finishedAt,
                    failureReason: phase == .failed ? "gave up after 60 attempts" : nil
                )
                var next: Int64?
                switch phase {
                case .tracking, .processing, .retrieving:
                    next = nowMillis + 60_000 + Int64(rng.unit() * 1_740_000)
                case .complete, .failed:
                    if let finishedAt, now.timeIntervalSince(finishedAt) < retention - 1800 {
                        next = nowMillis + 60_000 + Int64(rng.unit() * 1_740_000)
                    }
                case .deleted:
                    next = nil
                }
                steps += TransitionDriver.writeBook(machine, schedule: StoredSchedule(next: next), now: nowMillis)
                if let finishedAt {
                    let jobState = phase == .complete ? "complete" : phase == .failed ? "failed" : "pending"
                    let dueAt: Int64? = phase == .retrieving ? nowMillis + 60_000 + Int64(rng.unit() * 600_000) : nil
                    let lastError: String? = phase == .failed ? "gave up after 60 attempts" : nil
                    let completedAt: Int64? = phase == .retrieving ? nil : finishedAt.storageMillis + 5_000
                    steps.append(
                        SQLStep(
                            """
                            INSERT INTO analytics_jobs (book_uuid, generation, state, attempts, due_at, last_error, created_at, completed_at)
                            VALUES (\(uuid.rawValue), 1, \(jobState), \(phase == .failed ? 60 : 1), \(dueAt), \(lastError),
                                \(finishedAt.storageMillis), \(completedAt))
                            """
                        )
                    )
                    if phase == .complete {
                        steps.append(
                            SQLStep(
                                """
                                INSERT INTO analytics_results (book_uuid, generation, endpoint, body, retrieved_at)
                                VALUES (\(uuid.rawValue), 1, 'summary', \(benchSummaryBody), \(finishedAt.storageMillis + 5_000))
                                """
                            )
                        )
                    }
                }
                summary.books += 1
                summary.documents += count
                summary.byState[phase, default: 0] += 1
            }
            try await perform(StoreOperation(.transaction, writes: steps))
        }
        // A long fill (minutes on PostgreSQL at 100k Books) would leave its first polls due.
        let shift = Int64(((ContinuousClock.now - started).inSeconds * 1000).rounded(.up))
        try await perform(
            StoreOperation(
                .transaction,
                writes: [
                    SQLStep("UPDATE books SET next_poll_at = next_poll_at + \(shift) WHERE next_poll_at IS NOT NULL"),
                    SQLStep("UPDATE analytics_jobs SET due_at = due_at + \(shift) WHERE due_at IS NOT NULL"),
                ]
            )
        )
        summary.scheduledFrom = now.addingTimeInterval(Double(shift) / 1000)
        summary.seconds = (ContinuousClock.now - started).inSeconds
        return summary
    }
}

/// The summary every filled complete Book keeps.
private let benchSummaryBody = Array(
    #"{"status":200,"response":{"summary":{"total_deposits":48211.37,"total_withdrawals":45102.10,"average_daily_balance":9120.55,"nsf_count":0,"months":3}}}"#
        .utf8
)
