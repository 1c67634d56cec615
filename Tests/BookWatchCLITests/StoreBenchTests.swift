import BookWatchCore
import BookWatchSQLite
import BookWatchStore
import Foundation
import Testing

@testable import BookWatchBench
@testable import BookWatchCLI

/// `bench store` times what it claims to: every Book taken through its whole life, once.
@Suite struct StoreBenchTests {
    @Test func everyBookLivesItsWholeLifeOnceWhateverTheWorkers() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-storebench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteBookStore(path: directory.appendingPathComponent("db.sqlite").path)
        defer { try? store.close() }
        let figures = try await StoreBench.run(store: store, books: 30, workers: 3)
        #expect(figures.operations == 30 * 11 && figures.seconds > 0, "\(figures.operations)")
        #expect(try await store.totals() == [.complete: 30])
        let counts = try await store.analyticsCounts()
        #expect(counts.jobs == ["complete": 30] && counts.results == 30)
        #expect(try await store.pendingInboxCount() == 0)
    }
}
