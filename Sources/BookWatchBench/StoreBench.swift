import BookWatchCore
import BookWatchStore
import Foundation

/// One Book's life in store operations, for `bench store`.
package enum StoreBench {
    /// One run's figures.
    package struct Figures: Sendable {
        /// Store operations made.
        package var operations: Int
        /// Wall time they took.
        package var seconds: Double
    }

    /// Each worker takes its share of `books` through: track, two webhook hints (one stored in
    /// the inbox and applied with its row), a claimed poll with a verifying snapshot, a claimed
    /// poll with a finished one, the analytics job claimed and completed with its result.
    package static func run(store: any BookStore, books: Int, workers: Int) async throws -> Figures {
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
        let hint = BookInput.webhook(WebhookHint(event: .documentUploaded, document: DocumentRef(pk: index * 10 + 1)), HintDelivery(inboxRow: row))
        _ = try await counted { try await store.apply(hint, to: uuid, at: now, options: TransitionOptions()) }
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
                    .snapshot(snapshot, PollAnswer(takenAt: due, claim: claimed.first?.claimedAt)),
                    to: uuid,
                    at: due,
                    options: TransitionOptions()
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
                    .analytics(generation: job.generation, .stored, JobReport(results: [result])),
                    to: job.bookUUID,
                    at: later,
                    options: TransitionOptions()
                )
            }
        }
        return operations
    }
}
