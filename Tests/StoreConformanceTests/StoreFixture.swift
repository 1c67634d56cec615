import BookWatchCore
import BookWatchPostgres
import BookWatchSQLite
import BookWatchStore
import Foundation
import Testing

/// The stores every conformance case runs against.
///
/// SQLite always runs. PostgreSQL runs when `BOOKWATCH_TEST_POSTGRES_URL` names a server
/// (`scripts/with-postgres.sh swift test` starts a throwaway one, as `.ci/run` does); CI also sets
/// `BOOKWATCH_REQUIRE_POSTGRES=1`, which turns a missing server into a failure instead of a skip.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    static let postgresURL = ProcessInfo.processInfo.environment["BOOKWATCH_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let postgresRequired = ProcessInfo.processInfo.environment["BOOKWATCH_REQUIRE_POSTGRES"] == "1"

    /// The kinds to run here: PostgreSQL only with a server (or when it is required, to fail).
    static var available: [StoreKind] { postgresURL != nil || postgresRequired ? allCases : [.sqlite] }

    var testDescription: String { rawValue }
}

/// Opens a fresh, empty store of `kind` (a temp file, or a schema of its own on the test server),
/// runs `body`, and closes it.
func withStore<T>(
    _ kind: StoreKind,
    schedule: PollSchedule = PollSchedule(minimum: 60, maximum: 1800),
    random: @escaping @Sendable () -> Double = { 0 },
    _ body: (any BookStore) async throws -> T
) async throws -> T {
    let store = try await openStore(kind, schedule: schedule, random: random)
    do {
        let value = try await body(store.store)
        try await store.close()
        return value
    } catch {
        try? await store.close()
        throw error
    }
}

/// An opened store and how to get rid of it.
struct OpenedStore {
    var store: any BookStore
    var cleanup: @Sendable () async -> Void
    /// What a second replica (or the same process after a restart) opens.
    var reopen: @Sendable () async throws -> any BookStore

    func close() async throws {
        try await store.close()
        await cleanup()
    }
}

func openStore(_ kind: StoreKind, schedule: PollSchedule, random: @escaping @Sendable () -> Double) async throws -> OpenedStore {
    switch kind {
    case .sqlite:
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-conformance-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("db.sqlite").path
        let open: @Sendable () async throws -> any BookStore = { try SQLiteBookStore(path: path, schedule: schedule, random: random) }
        return OpenedStore(store: try await open(), cleanup: { try? FileManager.default.removeItem(at: directory) }, reopen: open)
    case .postgres:
        guard let base = StoreKind.postgresURL else {
            Issue.record("BOOKWATCH_REQUIRE_POSTGRES=1 but BOOKWATCH_TEST_POSTGRES_URL is not set: run scripts/with-postgres.sh swift test")
            throw StoreError(.unavailable, subject: "BOOKWATCH_TEST_POSTGRES_URL", detail: "not set")
        }
        let url = base + (base.contains("?") ? "&" : "?") + "sslmode=disable&schema=t_\(UUID().uuidString.prefix(8).lowercased())"
        let open: @Sendable () async throws -> any BookStore = {
            try await PostgresBookStore.open(url: url, schedule: schedule, maximumConnections: 8, random: random)
        }
        return OpenedStore(store: try await open(), cleanup: {}, reopen: open)
    }
}

/// Inputs and constants shared by the cases.
enum F {
    static let uuid = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!
    static let other = BookUUID("1a2b3c4d-0000-4000-8000-00000000000b")!
    static let t0 = Date(timeIntervalSince1970: 1_774_000_000)

    static func book(_ index: Int) -> BookUUID {
        BookUUID(String(format: "00000000-0000-4000-8000-%012d", index))!
    }

    static let finished = BookSnapshot.present(
        pk: 1,
        status: .verified,
        documents: [
            DocumentSnapshot(ref: DocumentRef(pk: 1, uuid: "doc-1"), status: .completed),
            DocumentSnapshot(ref: DocumentRef(pk: 2, uuid: "doc-2"), status: .rejected),
        ]
    )
    /// `finished` reopened and finished again: a third document, processed.
    static let grown = BookSnapshot.present(
        pk: 1,
        status: .verified,
        documents: [
            DocumentSnapshot(ref: DocumentRef(pk: 1, uuid: "doc-1"), status: .completed),
            DocumentSnapshot(ref: DocumentRef(pk: 2, uuid: "doc-2"), status: .rejected),
            DocumentSnapshot(ref: DocumentRef(pk: 3, uuid: "doc-3"), status: .completed),
        ]
    )
    static let verifying = BookSnapshot.present(
        pk: 1,
        status: .verifying,
        documents: [
            DocumentSnapshot(ref: DocumentRef(pk: 1, uuid: "doc-1"), status: .completed),
            DocumentSnapshot(ref: DocumentRef(pk: 2, uuid: "doc-2"), status: .processing),
        ]
    )

    static func uploaded(_ pk: Int, _ delivery: HintDelivery = HintDelivery()) -> BookInput {
        .webhook(WebhookHint(event: .documentUploaded, document: DocumentRef(pk: pk)), delivery)
    }

    static let bookVerified = BookInput.webhook(WebhookHint(event: .bookVerified, document: nil))

    static func delivery(_ id: String, at: Date = t0) -> InboxDelivery {
        InboxDelivery(
            requestID: id,
            receivedAt: at,
            bookUUID: uuid,
            bookPK: nil,
            event: "document.upload_succeeded",
            body: Array("{\"event_name\":\"document.upload_succeeded\"}".utf8),
            remoteAddress: "127.0.0.1"
        )
    }
}

extension Date {
    func plus(_ seconds: TimeInterval) -> Date { addingTimeInterval(seconds) }
}
