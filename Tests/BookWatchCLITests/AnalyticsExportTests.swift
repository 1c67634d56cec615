import BookWatchCore
import BookWatchSQLite
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Testing

@testable import BookWatchCLI

/// `bookwatch analytics export --dir DIR [--since TIME]`.
@Suite struct AnalyticsExportTests {
    static let t0 = Date(timeIntervalSince1970: 1_774_000_000)

    static func book(_ index: Int) -> BookUUID { BookUUID(String(format: "00000000-0000-4000-8000-%012d", index))! }

    @Test func everyResultBecomesAFileOnceAndSinceFilters() async throws {
        let cli = try CLIHarness(now: Self.t0.addingTimeInterval(7200))
        let store = try SQLiteBookStore(path: cli.databasePath)
        // 250 Books (more than a page), two endpoints each; the last 10 retrieved an hour later.
        for index in 1...250 {
            let at = index > 240 ? Self.t0.addingTimeInterval(3600) : Self.t0
            try await StoreFixtures.retrievedWithResults(
                in: store,
                book: Self.book(index),
                pk: index,
                endpoints: ["summary", "cash_flow_features"],
                at: at
            )
        }
        try await store.close()
        let out = cli.directory + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)

        #expect(await cli.run(["analytics", "export", "--dir", out, "--since", "90m"]) == 0)
        #expect(cli.standardOutput == "exported 20 results (0 already present) to \(out)\n")
        #expect(await cli.run(["analytics", "export", "--dir", out]) == 0)
        #expect(cli.standardOutput == "exported 480 results (20 already present) to \(out)\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).count == 500)
        #expect(await cli.run(["analytics", "export", "--dir", out, "--since", "2026-03-20T09:00:00Z"]) == 0)
        #expect(cli.standardOutput == "exported 0 results (500 already present) to \(out)\n")
        // `analytics UUID` still shows one Book (the default subcommand).
        #expect(await cli.run(["analytics", Self.book(3).rawValue]) == 0)
        #expect(cli.standardOutput.contains(#""endpoint":"cash_flow_features""#))
    }

    @Test func aGenerationStillBeingFetchedIsNotExported() async throws {
        let cli = try CLIHarness()
        let store = try SQLiteBookStore(path: cli.databasePath)
        let uuid = Self.book(1)
        try await StoreFixtures.openJob(in: store, book: uuid, at: Self.t0)
        let job = try #require(try await store.claimAnalyticsJob(owner: "w", now: Self.t0, lease: 60))
        // One endpoint stored, the other not fetched yet: the job is still running.
        let partial = AnalyticsResult(bookUUID: uuid, generation: job.generation, endpoint: "summary", body: Array("{}".utf8), retrievedAt: Self.t0)
        try await store.storeAnalyticsResult(partial, claim: job.claim)
        try await StoreFixtures.retrievedWithResults(in: store, book: Self.book(2), pk: 2, at: Self.t0)
        try await store.close()
        let out = cli.directory + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        #expect(await cli.run(["analytics", "export", "--dir", out]) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out) == ["\(Self.book(2)).g1.summary.json"])
    }

    @Test func badInputIsAUsageError() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["analytics", "export", "--dir", cli.directory + "/missing"]) == 2)
        #expect(cli.standardError.contains("no such directory"))
        #expect(await cli.run(["analytics", "export", "--dir", cli.directory, "--since", "yesterday"]) == 2)
        #expect(await cli.run(["analytics", "export"]) == 2)
        #expect(AnalyticsExport.parseSince("7d", now: Self.t0) == Self.t0.addingTimeInterval(-7 * 86400))
        #expect(AnalyticsExport.parseSince("1e12d", now: Self.t0) == nil)  // far past any Book: refused, not a crash
        #expect(await cli.run(["analytics", "export", "--dir", cli.directory, "--since", "1e12d"]) == 2)
        #expect(AnalyticsExport.parseSince("2026-12-01T00:00:00.5Z", now: Self.t0) != nil)
    }
}
