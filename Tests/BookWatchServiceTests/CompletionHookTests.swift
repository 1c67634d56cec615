import BookWatchCore
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@Suite struct CompletionHookTests {
    let uuid = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!
    let t0 = Date(timeIntervalSince1970: 1_774_000_000)

    @Test func runsOncePerRetrievalWithItsKeyAndRetriesFailures() async throws {
        let directory = try TemporaryDirectory()
        let dir = directory.path
        let store = try SQLiteBookStore(path: dir + "/db.sqlite")
        try await StoreFixtures.retrieved(in: store, book: uuid, at: t0)
        // A stale repeat of the outcome does not notify twice.
        _ = try await store.apply(.analytics(generation: 1, .stored), to: uuid, at: t0, options: .init())
        let log = dir + "/hook.log"
        let gate = dir + "/gate"
        let command = "test -f \(gate) && echo \"$BOOKWATCH_IDEMPOTENCY_KEY $BOOKWATCH_BOOK_UUID $BOOKWATCH_GENERATION\" >> \(log)"
        let hook = CompletionHook(command: command, store: store, logger: Logger(label: "test"))
        let t0 = self.t0
        #expect(try await hook.runPending(now: { t0 }) == 1)  // the command fails: not delivered
        #expect(try await store.pendingNotifications(limit: 10).first?.attempts == 1)
        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        #expect(try await hook.runPending(now: { t0 }) == 0, "a failed run waits its backoff (5 s)")
        let later = t0.addingTimeInterval(5)
        #expect(try await hook.runPending(now: { later }) == 1)
        #expect(try await hook.runPending(now: { later }) == 0)
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(lines == ["\(uuid):1 \(uuid) 1"])
    }

    /// Three retrievals; the first Book's command keeps failing. The others are handed on anyway,
    /// the failing one waits its own backoff; a command that hangs is stopped by the timeout; the
    /// command sees PATH, HOME and the three values, never bookwatch's secrets.
    @Test func aFailingOrHangingCommandBlocksNothingAndSeesNoSecrets() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-hook-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteBookStore(path: dir + "/db.sqlite")
        let books = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"]
            .compactMap(BookUUID.init)
        for (index, book) in books.enumerated() {
            let at = t0.addingTimeInterval(Double(index))
            _ = try await store.apply(.command(.track(.operator)), to: book, at: at, options: .init())
            _ = try await store.apply(
                .snapshot(
                    .present(
                        pk: index + 1,
                        status: .verified,
                        documents: [
                            DocumentSnapshot(ref: DocumentRef(pk: 1), status: .completed)
                        ]
                    )
                ),
                to: book,
                at: at,
                options: .init()
            )
            _ = try await store.apply(.analytics(generation: 1, .stored), to: book, at: at, options: .init())
        }
        setenv("OCROLUS_CLIENT_SECRET", "hook-must-not-see-this", 1)
        defer { unsetenv("OCROLUS_CLIENT_SECRET") }
        let log = dir + "/hook.log"
        let command = """
            case "$BOOKWATCH_BOOK_UUID" in
            1*) exit 3 ;;
            2*) sleep 30 ;;
            *) echo "$BOOKWATCH_BOOK_UUID secret=${OCROLUS_CLIENT_SECRET:-none} path=${PATH:+set}" >> \(log) ;;
            esac
            """
        let hook = CompletionHook(command: command, store: store, logger: Logger(label: "test"), timeout: 1)
        let t0 = self.t0
        let started = ContinuousClock.now
        #expect(try await hook.runPending(now: { t0 }) == 3)
        #expect(ContinuousClock.now - started < .seconds(20), "the hanging command was stopped")
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(lines == ["\(books[2]) secret=none path=set"])
        let pending = try await store.pendingNotifications(limit: 10)
        #expect(pending.map(\.bookUUID) == [books[0], books[1]])
        #expect(pending.allSatisfy { $0.attempts == 1 })
        #expect(try await hook.runPending(now: { t0.addingTimeInterval(4) }) == 0, "both wait their backoff")
    }

    /// Whether `pid` is gone (or a zombie: dead, waiting for a parent that may never reap it).
    static func isGone(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        return stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true
    }

    /// A store in a fresh directory with one stored retrieval waiting for its hook.
    static func storeWithOneRetrieval(_ t0: Date) async throws -> (SQLiteBookStore, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-hook-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store = try SQLiteBookStore(path: dir + "/db.sqlite")
        let book = try #require(BookUUID("44444444-4444-4444-8444-444444444444"))
        try await StoreFixtures.retrieved(in: store, book: book, pk: 4, at: t0)
        return (store, dir)
    }

    /// Waits (real time, at most `seconds`) for a file a command writes.
    static func contents(of path: String, within seconds: Int) async throws -> String? {
        for _ in 0..<(seconds * 100) {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), text.hasSuffix("\n") { return text }
            try await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    @Test func aTimedOutCommandIsStoppedWithEverythingItStartedAndSaysSo() async throws {
        #expect(FileManager.default.isReadableFile(atPath: "/proc/self/stat"), "the check below reads /proc")
        let (store, dir) = try await Self.storeWithOneRetrieval(t0)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A child that ignores SIGTERM, started in the background, and a shell that hangs.
        let pidFile = dir + "/child.pid"
        let command = "sh -c 'trap \"\" TERM; sleep 60' & echo $! > \(pidFile); sleep 60"
        let lines = Lines()
        let logger = Logger(label: "test") { label in
            LineLogHandler(label: label, format: .text, level: .warning, write: { line in lines.value.withLock { $0.append(line) } })
        }
        let hook = CompletionHook(command: command, store: store, logger: logger, timeout: 1)
        let t0 = self.t0
        let started = ContinuousClock.now
        #expect(try await hook.runPending(now: { t0 }) == 1)
        #expect(ContinuousClock.now - started < .seconds(20))
        let written = try #require(try await Self.contents(of: pidFile, within: 5))
        let child = try #require(Int32(written.trimmingCharacters(in: .whitespacesAndNewlines)))
        var gone = false
        for _ in 0..<200 where !gone {
            gone = Self.isGone(child)
            if !gone { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(gone, "the child that ignored SIGTERM was killed with its group")
        #expect(lines.value.withLock { $0 }.contains { $0.contains("timed out after 1 s") }, "the reason is logged")
        #expect(try await store.pendingNotifications(limit: 10).first?.attempts == 1)
    }

    @Test func aShellThatIgnoresSIGTERMIsKilledAfterItsGrace() async throws {
        let (store, dir) = try await Self.storeWithOneRetrieval(t0)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hook = CompletionHook(
            command: "trap '' TERM; while true; do sleep 1; done",
            store: store,
            logger: Logger(label: "test"),
            timeout: 1
        )
        let t0 = self.t0
        let started = ContinuousClock.now
        #expect(try await hook.runPending(now: { t0 }) == 1)
        let took = ContinuousClock.now - started
        #expect(took >= .seconds(5) && took < .seconds(15), "SIGTERM ignored, SIGKILL 5 s later (took \(took))")
        #expect(try await store.pendingNotifications(limit: 10).first?.attempts == 1)
    }

    @Test func shutdownLetsTheCommandInHandFinishAndRecordsIt() async throws {
        let (store, dir) = try await Self.storeWithOneRetrieval(t0)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let startedFile = dir + "/started"
        let log = dir + "/ran"
        let hook = CompletionHook(
            command: "echo yes > \(startedFile); sleep 1; echo ran > \(log)",
            store: store,
            logger: Logger(label: "test"),
            timeout: 30
        )
        let t0 = self.t0
        let loop = Task { try await hook.runPending(now: { t0 }) }
        _ = try #require(try await Self.contents(of: startedFile, within: 10))
        loop.cancel()  // graceful shutdown while the command runs
        _ = try? await loop.value
        #expect(try await Self.contents(of: log, within: 1) == "ran\n", "the command was not killed")
        #expect(try await store.pendingNotifications(limit: 10).isEmpty, "and its exit 0 was recorded")
    }

    final class Lines: Sendable {
        let value = Mutex<[String]>([])
    }
}
