import BookWatchCore
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Logging
import Testing

/// Results out of the database: one file per (Book, generation, endpoint), whole or absent,
/// never rewritten; `serve --export-dir` through the completion hook.
@Suite struct ResultExportTests {
    static let uuid = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!
    static let t0 = Date(timeIntervalSince1970: 1_774_000_000)

    static func result(_ body: String, generation: Int = 1, endpoint: String = "summary") -> AnalyticsResult {
        AnalyticsResult(bookUUID: uuid, generation: generation, endpoint: endpoint, body: Array(body.utf8), retrievedAt: t0)
    }

    @Test func aResultIsWrittenOnceAndNeverRewritten() throws {
        let directory = try TemporaryDirectory()
        let exporter = try ResultExporter(directory: directory.path)
        #expect(try exporter.export(Self.result(#"{"a":1}"#)))
        let path = directory.path + "/\(Self.uuid).g1.summary.json"
        let written = try String(contentsOfFile: path, encoding: .utf8)
        let document = try JSONSerialization.jsonObject(with: Data(written.utf8)) as? [String: Any]
        #expect(document?["book_uuid"] as? String == Self.uuid.rawValue)
        #expect(document?["generation"] as? Int == 1)
        #expect(document?["endpoint"] as? String == "summary")
        #expect(document?["retrieved_at"] as? String == "2026-03-20T09:46:40Z")
        #expect((document?["body"] as? [String: Any])?["a"] as? Int == 1)
        // Again, even with another body: the file stays as it was.
        #expect(try exporter.export(Self.result(#"{"a":2}"#)) == false)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == written)
        // Another generation and endpoint are files of their own; nothing temporary is left.
        #expect(try exporter.export(Self.result("not json", generation: 2, endpoint: "enriched_txns")))
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names == ["\(Self.uuid).g1.summary.json", "\(Self.uuid).g2.enriched_txns.json"])
        let second = try String(contentsOfFile: directory.path + "/\(Self.uuid).g2.enriched_txns.json", encoding: .utf8)
        #expect(second.contains(#""body":"not json""#))
    }

    @Test func temporaryFilesAKillLeftAreSweptByAgeOnly() throws {
        let directory = try TemporaryDirectory()
        let exporter = try ResultExporter(directory: directory.path)
        let old = directory.path + "/.\(Self.uuid).g1.summary.json.4242.7.tmp"
        let fresh = directory.path + "/.\(Self.uuid).g1.income.json.4243.8.tmp"
        let others = [directory.path + "/notes.tmp", directory.path + "/.editor-swap.tmp"]
        for path in [old, fresh] + others { #expect(FileManager.default.createFile(atPath: path, contents: Data("{".utf8))) }
        let now = Date()
        for path in [old] + others { try FileManager.default.setAttributes([.modificationDate: now.addingTimeInterval(-7200)], ofItemAtPath: path) }
        // A directory of the exporter's shape is not a file: kept.
        let folder = directory.path + "/.\(Self.uuid).g2.summary.json.1.2.tmp"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        try FileManager.default.setAttributes([.modificationDate: now.addingTimeInterval(-7200)], ofItemAtPath: folder)
        // Another replica may be writing `fresh` now, and the other files are not the exporter's:
        // only the abandoned temporary file goes.
        #expect(exporter.sweepAbandoned(now: now) == 1)
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: directory.path))
        #expect(
            names == [
                ".\(Self.uuid).g1.income.json.4243.8.tmp", "notes.tmp", ".editor-swap.tmp", ".\(Self.uuid).g2.summary.json.1.2.tmp",
            ]
        )
    }

    @Test func aMissingOrReadOnlyDirectoryIsRefusedNamingIt() throws {
        let directory = try TemporaryDirectory()
        #expect(throws: ResultExporter.ExportError.self) { try ResultExporter(directory: directory.path + "/missing") }
        let file = directory.path + "/file"
        _ = FileManager.default.createFile(atPath: file, contents: nil)
        #expect(throws: ResultExporter.ExportError.self) { try ResultExporter(directory: file) }
        #expect(ResultExporter.fileName(Self.result("{}", endpoint: "income/bank-statement-v2")) == "\(Self.uuid).g1.income_bank-statement-v2.json")
    }

    @Test func serveExportsEachRetrievalThroughTheHookAtLeastOnce() async throws {
        let directory = try TemporaryDirectory()
        let exportDirectory = directory.path + "/out"
        try FileManager.default.createDirectory(atPath: exportDirectory, withIntermediateDirectories: false)
        let store = try SQLiteBookStore(path: directory.path + "/db.sqlite")
        try await StoreFixtures.retrievedWithResults(in: store, book: Self.uuid, endpoints: ["summary", "cash_flow_features"], at: Self.t0)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let hook = CompletionHook(command: nil, exporter: try ResultExporter(directory: exportDirectory), store: store, logger: logger)
        let t0 = Self.t0
        #expect(try await hook.runPending(now: { t0 }) == 1)
        #expect(try await store.pendingNotifications(limit: 10).isEmpty)
        let names = try FileManager.default.contentsOfDirectory(atPath: exportDirectory).sorted()
        #expect(names == ["\(Self.uuid).g1.cash_flow_features.json", "\(Self.uuid).g1.summary.json"])

        // The directory gone (an unmounted volume): the retrieval waits its backoff, not lost.
        let other = BookUUID("1a2b3c4d-0000-4000-8000-00000000000b")!
        try await StoreFixtures.retrievedWithResults(in: store, book: other, at: t0)
        let aside = directory.path + "/aside"
        try FileManager.default.moveItem(atPath: exportDirectory, toPath: aside)
        #expect(try await hook.runPending(now: { t0 }) == 1)
        #expect(try await store.pendingNotifications(limit: 10).first?.attempts == 1)
        try FileManager.default.moveItem(atPath: aside, toPath: exportDirectory)
        let later = t0.addingTimeInterval(3600)
        #expect(try await hook.runPending(now: { later }) == 1)
        #expect(try await store.pendingNotifications(limit: 10).isEmpty)
        #expect(FileManager.default.fileExists(atPath: exportDirectory + "/\(other).g1.summary.json"))
    }
}
