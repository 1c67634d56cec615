import BookWatchCore
import BookWatchStore
import Foundation

/// Store states that tests of several targets start from.
package enum StoreFixtures {
    /// A VERIFIED answer listing one completed document: the Book's generation finishes.
    package static func finished(pk: Int = 1) -> BookInput {
        .snapshot(.present(pk: pk, status: .verified, documents: [DocumentSnapshot(ref: DocumentRef(pk: 1), status: .completed)]))
    }

    /// `book` tracked by the operator and finished: its generation 1 analytics job is open.
    package static func openJob(in store: any BookStore, book: BookUUID, pk: Int = 1, at t: Date) async throws {
        _ = try await store.apply(.command(.track(.operator)), to: book, at: t, options: .init())
        _ = try await store.apply(finished(pk: pk), to: book, at: t, options: .init())
    }

    /// `book` tracked, finished and retrieved with a stored result per endpoint (bodies
    /// `{"endpoint": NAME, "book": UUID}`), as the watcher stores them: generation 1 complete,
    /// its notification waiting.
    package static func retrievedWithResults(
        in store: any BookStore,
        book: BookUUID,
        pk: Int = 1,
        endpoints: [String] = ["summary"],
        at t: Date
    ) async throws {
        try await openJob(in: store, book: book, pk: pk, at: t)
        guard let job = try await store.claimAnalyticsJob(owner: "fixture", now: t, lease: 60) else { return }
        for endpoint in endpoints {
            let body = Array(#"{"endpoint":"\#(endpoint)","book":"\#(book)"}"#.utf8)
            let result = AnalyticsResult(bookUUID: book, generation: job.generation, endpoint: endpoint, body: body, retrievedAt: t)
            try await store.storeAnalyticsResult(result, claim: job.claim)
        }
        _ = try await store.apply(.analytics(generation: job.generation, .stored, JobReport(claim: job.claim)), to: book, at: t, options: .init())
    }

    /// `book` tracked, finished and retrieved: generation 1 stored, its notification waiting.
    package static func retrieved(in store: any BookStore, book: BookUUID, pk: Int = 1, at t: Date) async throws {
        try await openJob(in: store, book: book, pk: pk, at: t)
        _ = try await store.apply(.analytics(generation: 1, .stored), to: book, at: t, options: .init())
    }
}
