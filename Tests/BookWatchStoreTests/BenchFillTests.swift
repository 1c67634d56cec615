import BookWatchCore
import BookWatchSQLite
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Testing

/// The scale benchmark's generator writes rows the store reads back like real ones.
@Suite struct BenchFillTests {
    @Test func fillsAReadableSteadyStateMixWithNothingDueNow() async throws {
        let dir = try TemporaryDirectory()
        let store = try SQLiteBookStore(path: dir.file("db.sqlite"))
        let now = Date(timeIntervalSince1970: 1_774_000_000)
        let summary = try await store.fillForBenchmark(books: 2_000, documentsPerBook: 10, now: now, seed: 7)
        #expect(summary.books == 2_000)
        #expect(try await store.totals() == summary.byState)
        #expect((1_300...1_500).contains(summary.byState[.complete] ?? 0))
        #expect((300...500).contains(summary.byState[.processing] ?? 0))
        #expect(try await store.documentCounts().values.reduce(0, +) == summary.documents)
        #expect((16_000...22_000).contains(summary.documents))
        #expect(try await store.duePolls(now: now, limit: 10).isEmpty)
        #expect(try await store.duePolls(now: now.addingTimeInterval(1800), limit: 10).count == 10)
        let records = try await store.books(state: .complete, limit: 5)
        #expect(records.count == 5)
        #expect(records.allSatisfy { $0.analytics?.state == .complete && $0.documentsFinished == $0.documentsTotal })
        // Same seed, same database.
        let again = try SQLiteBookStore(path: dir.file("again.sqlite"))
        let second = try await again.fillForBenchmark(books: 2_000, documentsPerBook: 10, now: now, seed: 7)
        #expect(second.byState == summary.byState && second.documents == summary.documents)
    }
}
