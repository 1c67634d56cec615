import ArgumentParser
import BookWatchCore
import BookWatchStore
import Foundation

/// `bookwatch bench store`: the store operations one Book's life costs, on SQLite and (with
/// `--postgres`) on PostgreSQL in the same run, with the ratio; and the same work done by several
/// workers at once, as replicas sharing the database would.
struct BenchStoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Time the store's operations (track, webhook, claim + snapshot, analytics) on SQLite and PostgreSQL."
    )

    @Option(help: "Books to take through their life.") var books = 500
    @Option(help: "Workers doing it at once (replicas sharing one database).") var workers = "1,3"
    @Option(help: ArgumentHelp("A postgres:// URL to measure too (a schema of its own is created and left).", valueName: "url"))
    var postgres: String?

    func workerCounts() throws -> [Int] {
        try commaList(workers, { Int($0).flatMap { (1...64).contains($0) ? $0 : nil } }, invalid: { "--workers '\($0)' is not 1 to 64" })
    }

    func validate() throws {
        guard books > 0 else { throw ValidationError("--books must be at least 1") }
        _ = try workerCounts()
        if let postgres, case .sqlite = DatabaseLocation(postgres) { throw ValidationError("--postgres '\(postgres)' is not a postgres:// URL") }
    }

    func run() async throws {
        let context = CLIContext.current
        var baseline: [Int: StoreBench.Figures] = [:]
        context.print("store     workers  books    ops     wall   ops/s  ms/Book/worker  vs SQLite")
        for (name, make) in try targets() {
            for count in try workerCounts() {
                let store = try await make()
                let figures = try await using(store) { try await StoreBench.run(store: $0, books: books, workers: count) }
                if name == "sqlite" { baseline[count] = figures }
                let ratio = baseline[count].map { String(format: "%.2fx", figures.seconds / $0.seconds) } ?? "-"
                let columns = String(
                    format: "%7d  %5d  %5d  %6.2fs  %6.0f  %14.2f  %@",
                    count,
                    books,
                    figures.operations,
                    figures.seconds,
                    Double(figures.operations) / figures.seconds,
                    figures.seconds * 1000 / Double(books) * Double(count),
                    ratio
                )
                context.print(name.padding(toLength: 8, withPad: " ", startingAt: 0) + "  " + columns)
            }
        }
    }

    private func targets() throws -> [(String, () async throws -> any BookStore)] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-bench-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var targets: [(String, () async throws -> any BookStore)] = [
            (
                "sqlite",
                {
                    try await StoreOpener.open(directory.appendingPathComponent("\(UUID().uuidString).sqlite").path, setting: "bench store")
                }
            )
        ]
        if let postgres {
            targets.append(
                (
                    "postgres",
                    {
                        let separator = postgres.contains("?") ? "&" : "?"
                        let schema = "bench_\(UUID().uuidString.prefix(8).lowercased())"
                        return try await StoreOpener.open(postgres + separator + "schema=\(schema)", setting: "--postgres")
                    }
                )
            )
        }
        return targets
    }
}

/// One Book's life in store operations, for `bench store`.
enum StoreBench {
    struct Figures: Sendable {
        var operations: Int
        var seconds: Double
    }

    /// Each worker takes its share of `books` through: track, two webhook hints (one stored in
    /// the inbox and applied with its row), a claimed poll with a verifying snapshot, a claimed
    /// poll with a finished one, the analytics job claimed and completed with its result.
    static func run(store: any BookStore, books: Int, workers: Int) async throws -> Figures {
        let start = Date(timeIntervalSince1970: 1_774_000_000)
        let began = ContinuousClock.now
        let operations = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var done = 0
                    for index in stride(from: worker, to: books, by: workers) {
                        done += try await life(of: index, worker: worker, store: store, start: start)
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        return Figures(operations: operations, seconds: (ContinuousClock.now - began).inSeconds)
    }

    /// One Book's life; answers how many store operations it made.
    private static func life(of index: Int, worker: Int, store: any BookStore, start: Date) async throws -> Int {
        guard let uuid = BookUUID(String(format: "00000000-0000-4000-8000-%012d", index)) else { return 0 }
        var operations = 0
        func counted<T>(_ operation: () async throws -> T) async rethrows -> T {
            operations += 1
            return try await operation()
        }
        var now = start
        _ = try await counted { try await store.apply(.command(.track(.created)), to: uuid, at: now, options: .init()) }
        let delivery = InboxDelivery(
            requestID: "bench-\(index)",
            receivedAt: now,
            bookUUID: uuid,
            bookPK: nil,
            event: "document.upload_succeeded",
            body: Array(#"{"event_name":"document.upload_succeeded"}"#.utf8)
        )
        guard case .stored(let row) = try await counted({ try await store.appendToInbox(delivery) }) else { return operations }
        let hint = BookInput.webhook(WebhookHint(event: .documentUploaded, document: DocumentRef(pk: index * 10 + 1)))
        _ = try await counted { try await store.apply(hint, to: uuid, at: now, options: TransitionOptions(inboxRow: row)) }
        let documents = (1...3).map { DocumentRef(pk: index * 10 + $0) }
        for status in [DocumentStatus.processing, .completed] {
            now = now.addingTimeInterval(3600)
            let due = now
            try await counted { try await store.requestPoll(uuid, at: due, reason: .operator) }
            let claimed = try await counted { try await store.claimDuePolls(now: due, limit: 1, lease: 120, excluding: []) }
            let snapshot = BookSnapshot.present(
                pk: index,
                status: status == .completed ? .verified : .verifying,
                documents: documents.map { DocumentSnapshot(ref: $0, status: status) }
            )
            _ = try await counted {
                try await store.apply(
                    .snapshot(snapshot),
                    to: uuid,
                    at: due,
                    options: TransitionOptions(snapshotTakenAt: due, pollClaim: claimed.first?.claimedAt)
                )
            }
        }
        // Other workers' jobs may be due too: whichever is claimed is completed.
        let later = now
        if let job = try await counted({
            try await store.claimAnalyticsJob(owner: "bench-\(worker)", now: later.addingTimeInterval(86_400), lease: 120)
        }) {
            let result = AnalyticsResult(
                bookUUID: job.bookUUID,
                generation: job.generation,
                endpoint: "summary",
                body: Array(#"{"summary":{}}"#.utf8),
                retrievedAt: later
            )
            _ = try await counted {
                try await store.apply(
                    .analytics(generation: job.generation, .stored),
                    to: job.bookUUID,
                    at: later,
                    options: TransitionOptions(results: [result])
                )
            }
        }
        return operations
    }
}
