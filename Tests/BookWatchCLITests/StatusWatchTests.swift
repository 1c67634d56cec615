import BookWatchCore
import BookWatchSQLite
import BookWatchStore
import Foundation
import Synchronization
import Testing

@testable import BookWatchCLI

/// `status` as an operator's tool: progress bars, colours only on a terminal without NO_COLOR,
/// and `--watch` frames (counted through the injected sleep, never waited for).
@Suite struct StatusWatchTests {
    let first = "09c52985-2f05-4022-a738-9277cc335c7e"
    let second = "b79fb14b-1d2a-4e8e-8a3c-6f0d2c9e7a41"

    final class Frames: Sendable {
        let count = Mutex(0)
        let limit: Int
        init(limit: Int) { self.limit = limit }
        /// Counts a frame; after `limit` frames, ends the loop as Ctrl-C would.
        func sleep(_ seconds: TimeInterval) async throws {
            #expect(seconds == 1)
            let reached = count.withLock { count -> Bool in
                count += 1
                return count >= limit
            }
            if reached { throw CancellationError() }
        }
    }

    func trackedWithProgress() async throws -> CLIHarness {
        let cli = try CLIHarness()
        #expect(await cli.run(["track", first, second]) == 0)
        let store = try SQLiteBookStore(path: cli.databasePath, random: { 0 })
        _ = try await store.apply(
            .snapshot(
                .present(
                    pk: 7,
                    status: .verifying,
                    documents: [
                        DocumentSnapshot(ref: DocumentRef(pk: 1), status: .verificationComplete),
                        DocumentSnapshot(ref: DocumentRef(pk: 2), status: .processing),
                        DocumentSnapshot(ref: DocumentRef(pk: 3), status: .completed),
                        DocumentSnapshot(ref: DocumentRef(pk: 4), status: .queued),
                    ]
                )
            ),
            to: try BookUUID(parsing: second),
            at: cli.now,
            options: .init()
        )
        try store.close()
        return cli
    }

    @Test func progressBarShowsDocumentsFinished() {
        #expect(StatusTable.bar(finished: 3, total: 8, unicode: false) == "[###.......]")
        #expect(StatusTable.bar(finished: 8, total: 8, unicode: false) == "[##########]")
        #expect(StatusTable.bar(finished: 0, total: 8, unicode: true) == "[░░░░░░░░░░]")
        #expect(StatusTable.bar(finished: 0, total: 0, unicode: false) == "")
    }

    @Test func plainOutputHasBarsAndNoEscapeCodes() async throws {
        let cli = try await trackedWithProgress()
        #expect(await cli.run(["status"]) == 0)
        #expect(cli.standardOutput.contains("2/4   [#####.....]"))
        #expect(!cli.standardOutput.contains("\u{1B}"))
    }

    @Test func aTerminalGetsColouredStatesUnlessNoColorIsSet() async throws {
        let cli = try await trackedWithProgress()
        #expect(await cli.run(["status"], terminal: true) == 0)
        let coloured = cli.standardOutput
        #expect(coloured.contains("\u{1B}[33mprocessing"))
        #expect(coloured.contains("[█████░░░░░]"))
        // Escape codes wrap padded cells: without them the table is the plain one, aligned.
        let stripped = coloured.replacing(/\u{1B}\[[0-9;]*m/, with: "")
        #expect(await cli.run(["status"], environment: ["BOOKWATCH_DATABASE": cli.databasePath, "NO_COLOR": "1"], terminal: true) == 0)
        #expect(!cli.standardOutput.contains("\u{1B}["))
        #expect(cli.standardOutput == stripped)
    }

    @Test func watchWritesPlainFramesWhenNotATerminal() async throws {
        let cli = try await trackedWithProgress()
        let frames = Frames(limit: 3)
        _ = await cli.run(["status", "--watch"], sleep: { try await frames.sleep($0) })
        let output = cli.standardOutput
        #expect(frames.count.withLock { $0 } == 3)
        #expect(output.components(separatedBy: "-- updated ").count - 1 == 3)
        #expect(output.components(separatedBy: "total: 2 books").count - 1 == 3)
        #expect(!output.contains("\u{1B}"))
    }

    @Test func watchRedrawsInPlaceOnATerminal() async throws {
        let cli = try await trackedWithProgress()
        let frames = Frames(limit: 2)
        _ = await cli.run(["status", "--watch"], terminal: true, sleep: { try await frames.sleep($0) })
        let output = cli.standardOutput
        #expect(output.components(separatedBy: "\u{1B}[H").count - 1 == 2)  // cursor home per frame
        #expect(output.components(separatedBy: "\u{1B}[2J").count - 1 == 1)  // the screen is cleared once
        #expect(output.contains("Ctrl-C to stop"))
    }

    @Test func watchRejectsJSONAndBadIntervals() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["status", "--watch", "--json"]) == 2)
        #expect(await cli.run(["status", "--watch", "--interval", "0"]) == 2)
    }
}
