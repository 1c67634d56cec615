import BookWatchCore
import BookWatchSQLite
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Testing

@testable import BookWatchCLI

@Suite struct CLITests {
    let first = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    let second = "09c52985-2f05-4022-a738-9277cc335c7e"

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func trackThenStatusJSONShowsTheBookInTracking() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["track", first]) == 0)
        #expect(cli.standardOutput == "tracking \(first)\n")
        #expect(await cli.run(["status", "--json"]) == 0)
        let document = try json(cli.standardOutput)
        #expect(Set(document.keys) == ["books", "totals"])
        let books = try #require(document["books"] as? [[String: Any]])
        let book = try #require(books.first)
        #expect(books.count == 1)
        #expect(
            Set(book.keys) == [
                "book_uuid", "book_pk", "state", "generation", "documents", "last_webhook_at",
                "last_polled_at", "next_poll_at", "analytics", "label", "name",
            ]
        )
        #expect(book["label"] is NSNull && book["name"] is NSNull)
        #expect(book["book_uuid"] as? String == first)
        #expect(book["state"] as? String == "tracking")
        #expect(book["generation"] as? Int == 1)
        #expect(book["book_pk"] is NSNull)
        #expect(book["last_webhook_at"] is NSNull)
        #expect(book["next_poll_at"] as? String == "2026-03-20T09:46:40Z")
        let documents = try #require(book["documents"] as? [String: Int])
        #expect(documents == ["total": 0, "finished": 0, "failed": 0])
        let analytics = try #require(book["analytics"] as? [String: Any])
        #expect(Set(analytics.keys) == ["state", "attempts", "retrieved_at", "last_error"])
        #expect(analytics["state"] as? String == "none")
        #expect(document["totals"] as? [String: Int] == ["tracking": 1])
    }

    @Test func malformedUUIDExitsTwoAndWritesNothing() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["track", "not-a-uuid"]) == 2)
        #expect(cli.standardError.contains("'not-a-uuid'"))
        #expect(cli.databaseBytes() == nil)
        // With an existing database: a mix of good and bad uuids changes nothing.
        #expect(await cli.run(["track", first]) == 0)
        let before = cli.databaseBytes()
        #expect(await cli.run(["track", second, "0a1b-bad"]) == 2)
        #expect(cli.standardError.contains("'0a1b-bad'"))
        #expect(cli.databaseBytes() == before)
        #expect(await cli.run(["status", "--json"]) == 0)
        #expect(try json(cli.standardOutput)["totals"] as? [String: Int] == ["tracking": 1])
    }

    @Test(arguments: [
        (["frobnicate"], "frobnicate"),
        (["status", "--bogus"], "--bogus"),
        (["status", "--state", "nope"], "nope"),
        (["status", "--limit=-3"], "-3"),
        (["status", "--limit", "many"], "many"),
        (["track"], "uuid"),
        (["untrack", "xyz"], "xyz"),
        (["status", "nope"], "nope"),
        (["simulate", "--drop", "2"], "--drop"),
        (["simulate", "--webhook-secret", "short"], "--webhook-secret"),
        (["simulate", "--flavour", "weird"], "weird"),
        (["simulate", "--port", "70000"], "--port"),
        (["simulate", "--webhook-url", "not a url"], "--webhook-url"),
        // PostgreSQL URL options are read as the store reads them, before anything connects.
        (["bench", "scale", "--postgres", "postgres://db.example/bookwatch"], "--postgres: the postgres:// URL names no user"),
        (["bench", "store", "--postgres", "postgres://u@db.example/b?sslmode=bogus"], "--postgres: sslmode 'bogus'"),
        (["bench", "chaos", "--database", "postgres:///bookwatch"], "--database: expected postgres://"),
        (["migrate", "--to", "postgres://u@db.example/b?schema=a-b"], "--to: schema 'a-b'"),
        (["bench", "chaos", "--database", "./chaos.sqlite"], "--database: expected postgres://"),
        (["migrate", "--to", "./other.sqlite"], "--to: expected postgres://"),
        // The commands that make their own schemas refuse a URL that names one, before any
        // connection (bench store did so only once it ran), and a malformed URL says so first.
        (["bench", "store", "--postgres", "postgres://u@db.example/b?schema=mine"], "--postgres must not name a schema"),
        (["bench", "scale", "--postgres", "postgres://u@db.example/b?schema=mine"], "--postgres must not name a schema"),
        (["bench", "chaos", "--database", "postgres://u@db.example/b?schema=mine"], "--database must not name a schema"),
        (["bench", "chaos", "--database", "postgres://db.example/b?schema=mine"], "--database: the postgres:// URL names no user"),
        (["bench", "store", "--postgres", "postgres://u@db.example/b#x"], "--postgres must not end in a #fragment"),
    ])
    func usageErrorsExitTwoNamingTheProblem(arguments: [String], named: String) async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(arguments) == 2)
        #expect(cli.standardError.contains(named))
        #expect(cli.databaseBytes() == nil)
    }

    @Test(arguments: [
        ["bench", "store", "--postgres", "postgres://:hunter2-secret@db.example/b"],
        ["bench", "store", "--postgres", "postgress://u:hunter2-secret@db.example/b"],  // a typo: not a URL at all
        ["migrate", "--to", "postgress://u:hunter2-secret@db.example/b"],
        ["bench", "chaos", "--database", "postgres://u:hunter2@[bad/b"],  // does not parse
    ])
    func aMalformedPostgresURLOptionIsNotEchoedWithItsPassword(arguments: [String]) async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(arguments) == 2)
        #expect(cli.standardError.contains(arguments[arguments.count - 2]))
        #expect(!cli.standardError.contains("hunter2"))
    }

    @Test func anUnreadablePostgresURLIsNeverPrintedWhole() {
        #expect(DatabaseLocation("postgres://u:hunter2@[bad/b").redacted == "postgres://(unreadable URL)")
        #expect(DatabaseLocation("postgres://u:pw@db.example/b").redacted == "postgres://u:***@db.example/b")
        #expect(DatabaseLocation("postgres://u@db.example/b").redacted == "postgres://u@db.example/b")
    }

    @Test func helpExitsZero() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["--help"]) == 0)
        #expect(cli.standardOutput.contains("SUBCOMMANDS"))
    }

    @Test func databaseFlagOverridesTheEnvironment() async throws {
        let cli = try CLIHarness()
        let flagPath = cli.directory + "/flag.sqlite"
        #expect(await cli.run(["track", first, "--database", flagPath]) == 0)
        #expect(FileManager.default.fileExists(atPath: flagPath))
        #expect(cli.databaseBytes() == nil)
    }

    @Test func missingDatabaseDirectoryIsAConfigurationErrorNamingTheSetting() async throws {
        let cli = try CLIHarness()
        let path = cli.directory + "/missing/db.sqlite"
        #expect(await cli.run(["track", first], environment: ["BOOKWATCH_DATABASE": path]) == 2)
        #expect(cli.standardError.contains("BOOKWATCH_DATABASE=\(path)"))
        #expect(cli.standardError.contains("does not exist"))
    }

    @Test func statusWithoutADatabaseCreatesNone() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["status"]) == 0)
        #expect(cli.standardOutput == "no books tracked\ntotal: 0 books\n")
        #expect(await cli.run(["status", "--json"]) == 0)
        #expect(try json(cli.standardOutput)["books"] as? [Any] != nil)
        #expect(cli.databaseBytes() == nil)
    }

    @Test func statusTableIsAlignedWithTotals() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["track", first, second]) == 0)
        let store = try SQLiteBookStore(path: cli.databasePath, random: { 0 })
        let snapshot = BookInput.snapshot(
            .present(
                pk: 7,
                status: .verifying,
                documents: [
                    DocumentSnapshot(ref: DocumentRef(pk: 1), status: .verificationComplete),
                    DocumentSnapshot(ref: DocumentRef(pk: 2), status: .processing),
                ]
            )
        )
        _ = try await store.apply(snapshot, to: try BookUUID(parsing: second), at: cli.now.addingTimeInterval(-180), options: .init())
        try store.close()
        #expect(await cli.run(["status"]) == 0)
        let lines = cli.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("UUID"))
        // Columns line up: every row has STATE where the header has it.
        let stateColumn = try #require(lines[0].range(of: "STATE")).lowerBound.utf16Offset(in: lines[0])
        for line in lines[1...2] {
            let index = line.index(line.startIndex, offsetBy: stateColumn)
            #expect(line[index...].hasPrefix("tracking") || line[index...].hasPrefix("processing"))
        }
        let processing = try #require(lines.first { $0.contains(second) })
        #expect(processing.contains("1/2"))
        #expect(processing.contains("3m ago"))
        #expect(lines[3] == "total: 2 books: 1 tracking, 1 processing")
        // --state and a single uuid filter the table.
        #expect(await cli.run(["status", "--state", "processing", "--json"]) == 0)
        let filtered = try #require(try json(cli.standardOutput)["books"] as? [[String: Any]])
        #expect(filtered.map { $0["book_uuid"] as? String } == [second])
        #expect(await cli.run(["status", first]) == 0)
        #expect(cli.standardOutput.contains(first))
        #expect(!cli.standardOutput.contains(second))
    }

    @Test func statusForAnUntrackedBookIsARuntimeError() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["track", first]) == 0)
        #expect(await cli.run(["status", second]) == 1)
        #expect(cli.standardError.contains("\(second) is not tracked"))
    }

    @Test func untrackRemovesTheBook() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["track", first, second]) == 0)
        #expect(await cli.run(["untrack", first]) == 0)
        #expect(cli.standardOutput == "untracked \(first)\n")
        #expect(await cli.run(["untrack", first]) == 0)
        #expect(cli.standardOutput == "not tracked \(first)\n")
        #expect(await cli.run(["status", "--json"]) == 0)
        #expect(try json(cli.standardOutput)["totals"] as? [String: Int] == ["tracking": 1])
    }

    @Test func trackingTwiceSaysSo() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["track", first]) == 0)
        #expect(await cli.run(["track", first.uppercased()]) == 0)
        #expect(cli.standardOutput.hasPrefix("already tracked \(first)"))
    }

    static let relativeCases: [(Double?, String)] = [
        (nil, "-"), (0.2, "now"), (-42, "42s ago"), (-180, "3m ago"), (300, "in 5m"), (-7200, "2h ago"),
        (3 * 86_400, "in 3d"),
    ]

    @Test(arguments: relativeCases)
    func relativeTimes(offset: Double?, text: String) {
        let now = Date(timeIntervalSince1970: 1_000_000)
        #expect(RelativeTime.describe(offset.map { now.addingTimeInterval($0) }, now: now) == text)
    }
}

@Suite struct AnalyticsAndRetryCommandTests {
    let book = "09c52985-2f05-4022-a738-9277cc335c7e"

    func prepare(_ cli: CLIHarness, fail: Bool) async throws {
        #expect(await cli.run(["track", book]) == 0)
        let store = try SQLiteBookStore(path: cli.databasePath)
        let uuid = try BookUUID(parsing: book)
        _ = try await store.apply(StoreFixtures.finished(), to: uuid, at: cli.now, options: .init())
        if fail {
            _ = try await store.apply(.analytics(generation: 1, .permanentError("403 code 2102")), to: uuid, at: cli.now, options: .init())
        } else {
            let result = AnalyticsResult(bookUUID: uuid, generation: 1, endpoint: "summary", body: Array(#"{"total":42}"#.utf8), retrievedAt: cli.now)
            _ = try await store.apply(.analytics(generation: 1, .stored, JobReport(results: [result])), to: uuid, at: cli.now, options: .init())
        }
        try store.close()
    }

    @Test func analyticsPrintsTheStoredJSON() async throws {
        let cli = try CLIHarness()
        try await prepare(cli, fail: false)
        #expect(await cli.run(["analytics", book]) == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(cli.standardOutput.utf8)) as? [String: Any])
        let results = try #require(json["results"] as? [[String: Any]])
        #expect(results.count == 1)
        #expect((results[0]["body"] as? [String: Int]) == ["total": 42])
        #expect(results[0]["endpoint"] as? String == "summary")
        #expect(await cli.run(["analytics", book, "--endpoint", "signals"]) == 1)
        #expect(await cli.run(["analytics", book, "--endpoint", "nonsense"]) == 2)
    }

    @Test func retryRearmsAFailedJobOnly() async throws {
        let cli = try CLIHarness()
        try await prepare(cli, fail: true)
        #expect(await cli.run(["status", "--json"]) == 0)
        #expect(cli.standardOutput.contains("403 code 2102"))
        #expect(await cli.run(["retry", book]) == 0)
        #expect(cli.standardOutput.contains("re-armed"))
        #expect(await cli.run(["status", "--json"]) == 0)
        #expect(cli.standardOutput.contains(#""state" : "retrieving""#))
        #expect(await cli.run(["retry", book]) == 1)
        #expect(cli.standardError.contains("nothing to retry"))
    }
}
