import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import Testing

@Suite struct CompletionHookTests {
    let uuid = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!
    let t0 = Date(timeIntervalSince1970: 1_774_000_000)

    @Test func runsOncePerRetrievalWithItsKeyAndRetriesFailures() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-hook-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteBookStore(path: dir + "/db.sqlite")
        _ = try await store.apply(.command(.track(.operator)), to: uuid, at: t0, options: .init())
        _ = try await store.apply(.snapshot(.present(pk: 1, status: .verified, documents: [
            DocumentSnapshot(ref: DocumentRef(pk: 1), status: .completed)])), to: uuid, at: t0, options: .init())
        _ = try await store.apply(.analytics(generation: 1, .stored), to: uuid, at: t0, options: .init())
        // A stale repeat of the outcome does not notify twice.
        _ = try await store.apply(.analytics(generation: 1, .stored), to: uuid, at: t0, options: .init())
        let log = dir + "/hook.log", gate = dir + "/gate"
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
            _ = try await store.apply(.snapshot(.present(pk: index + 1, status: .verified, documents: [
                DocumentSnapshot(ref: DocumentRef(pk: 1), status: .completed)])), to: book, at: at, options: .init())
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
}
