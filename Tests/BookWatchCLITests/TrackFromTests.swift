import BookWatchCore
import BookWatchSQLite
import BookWatchStore
import Foundation
import Testing

@testable import BookWatchCLI

/// Labels and backfill: `track --label`, `track --from FILE`, `status --label`.
@Suite struct TrackFromTests {
    static func book(_ index: Int) -> String { String(format: "00000000-0000-4000-8000-%012d", index) }

    @Test func aFileOfThousandsIsTrackedWithLabelsAndASummary() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["track", Self.book(1), "--label", "loan-1"]) == 0)
        var lines = ["# uuid,label", ""]
        for index in 1...2000 { lines.append(index % 2 == 0 ? "\(Self.book(index)),loan-\(index)" : Self.book(index)) }
        lines += ["not-a-uuid,loan-x", "  \(Self.book(3)) , loan-3b  "]
        let file = cli.directory + "/books.csv"
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)

        #expect(await cli.run(["track", "--from", file]) == 1)  // one invalid line: named, the rest tracked
        #expect(cli.standardOutput == "added 1999, already tracked 2, invalid 1\n")
        #expect(cli.standardError.contains("line 2003: 'not-a-uuid,loan-x' is not a Book uuid"))

        let store = try SQLiteBookStore(path: cli.databasePath)
        #expect(try await store.books(state: nil, limit: nil).count == 2000)
        #expect(try await store.book(try #require(BookUUID(Self.book(1))))?.label == "loan-1")  // no label on its line: kept
        #expect(try await store.book(try #require(BookUUID(Self.book(2))))?.label == "loan-2")
        #expect(try await store.book(try #require(BookUUID(Self.book(3))))?.label == "loan-3b")
        #expect(try await store.books(state: nil, label: "loan-2", limit: nil).map(\.uuid.rawValue) == [Self.book(2)])
        try await store.close()

        #expect(await cli.run(["status", "--label", "loan-4"]) == 0)
        #expect(cli.standardOutput.contains(Self.book(4)) && cli.standardOutput.contains("loan-4"))
        #expect(!cli.standardOutput.contains(Self.book(2)))
        #expect(await cli.run(["status", "--label", "loan-4", "--json"]) == 0)
        let document = try JSONSerialization.jsonObject(with: Data(cli.standardOutput.utf8)) as? [String: Any]
        #expect((document?["books"] as? [[String: Any]])?.compactMap { $0["book_uuid"] as? String } == [Self.book(4)])
        #expect((document?["books"] as? [[String: Any]])?.compactMap { $0["label"] as? String } == ["loan-4"])
        #expect(await cli.run(["status", Self.book(4)]) == 0)
        #expect(cli.standardOutput.contains("Label:        loan-4"))
    }

    @Test func crlfFilesByteOrderMarksAndControlCharacters() async throws {
        let cli = try CLIHarness()
        let file = cli.directory + "/windows.csv"
        let text =
            "\u{FEFF}# exported from Excel\r\n\(Self.book(1)),loan-1\r\n\(Self.book(2))\r\n\(Self.book(3)),bad\u{1B}[31mlabel\r\n\(Self.book(2)),loan-2\r\n"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(await cli.run(["track", "--from", file]) == 1)
        #expect(cli.standardOutput == "added 2, already tracked 1, invalid 1\n")
        #expect(cli.standardError.contains("line 4:"))
        let store = try SQLiteBookStore(path: cli.databasePath)
        #expect(try await store.book(try #require(BookUUID(Self.book(1))))?.label == "loan-1")
        #expect(try await store.book(try #require(BookUUID(Self.book(2))))?.label == "loan-2")  // the last label of a repeat
        #expect(try await store.book(try #require(BookUUID(Self.book(3)))) == nil)
        try await store.close()
        #expect(await cli.run(["track", Self.book(5), "--label", "a\nb"]) == 2)
        #expect(await cli.run(["track", Self.book(5), "--label", "  loan-5 "]) == 0)
        #expect(await cli.run(["status", "--label", "loan-5"]) == 0)
        #expect(cli.standardOutput.contains(Self.book(5)))
    }

    @Test func badInvocationsAreUsageErrors() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["track"]) == 2)
        #expect(await cli.run(["track", Self.book(1), "--label", " "]) == 2)
        #expect(await cli.run(["track", "--from", cli.directory + "/missing.csv"]) == 2)
        #expect(cli.databaseBytes() == nil)
    }

    @Test func linesParse() {
        #expect(TrackCommand.parseLine("# comment") == nil)
        #expect(TrackCommand.parseLine("   ") == nil)
        guard case .success(let (uuid, label)) = TrackCommand.parseLine("\(Self.book(7)),a, b") else {
            Issue.record("not parsed")
            return
        }
        #expect(uuid.rawValue == Self.book(7))
        #expect(label == "a, b")
        guard case .failure = TrackCommand.parseLine("nope") else {
            Issue.record("accepted")
            return
        }
    }
}
