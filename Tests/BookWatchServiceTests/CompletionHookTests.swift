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
        #expect(try await hook.runPending(now: { t0 }) == 0)  // the command fails: not delivered
        #expect(try await store.pendingNotifications(limit: 10).first?.attempts == 1)
        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        #expect(try await hook.runPending(now: { t0 }) == 1)
        #expect(try await hook.runPending(now: { t0 }) == 0)
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(lines == ["\(uuid):1 \(uuid) 1"])
    }
}
