import BookWatchCore
import Foundation

/// The JSON of `bookwatch status --json` (and, one entry of it, `GET /books/{uuid}`).
///
/// The shape is a contract (architecture.md): every key is always present; times are RFC 3339
/// UTC strings or null.
public struct BookStatusDocument: Encodable, Sendable {
    public var books: [BookStatusEntry]
    public var totals: [String: Int]

    public init(records: [BookRecord], totals: [BookPhase: Int]) {
        books = records.map(BookStatusEntry.init)
        self.totals = Dictionary(uniqueKeysWithValues: totals.map { ($0.key.rawValue, $0.value) })
    }

    /// Encodes with sorted keys, so the output is stable for scripts and diffs.
    public func jsonData(pretty: Bool = true) throws -> Data {
        try BookStatusEntry.encoder(pretty: pretty).encode(self)
    }
}

/// One Book in the status JSON.
public struct BookStatusEntry: Encodable, Sendable {
    public struct Documents: Encodable, Sendable {
        public var total: Int
        public var finished: Int
        public var failed: Int
    }

    public struct Analytics: Encodable, Sendable {
        /// `none` before a job exists, else the job state.
        public var state: String
        public var attempts: Int
        public var retrievedAt: String?
        public var lastError: String?

        enum CodingKeys: String, CodingKey {
            case state, attempts
            case retrievedAt = "retrieved_at"
            case lastError = "last_error"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(state, forKey: .state)
            try container.encode(attempts, forKey: .attempts)
            try container.encode(retrievedAt, forKey: .retrievedAt)  // null, not absent
            try container.encode(lastError, forKey: .lastError)
        }
    }

    public var bookUUID: String
    public var bookPK: Int?
    public var state: String
    public var generation: Int
    public var documents: Documents
    public var lastWebhookAt: String?
    public var lastPolledAt: String?
    public var nextPollAt: String?
    public var analytics: Analytics

    public init(_ record: BookRecord) {
        let machine = record.machine
        bookUUID = machine.uuid.rawValue
        bookPK = machine.pk
        state = machine.phase.rawValue
        generation = machine.generation
        documents = Documents(
            total: record.documentsTotal,
            finished: record.documentsFinished,
            failed: record.documentsFailed
        )
        lastWebhookAt = machine.lastWebhookAt.map(Self.rfc3339)
        lastPolledAt = machine.lastSnapshotAt.map(Self.rfc3339)
        nextPollAt = record.nextPollAt.map(Self.rfc3339)
        analytics = Analytics(
            state: record.analytics?.state.rawValue ?? "none",
            attempts: record.analytics?.attempts ?? 0,
            retrievedAt: record.analytics?.retrievedAt.map(Self.rfc3339),
            lastError: record.analytics?.lastError ?? machine.failureReason
        )
    }

    enum CodingKeys: String, CodingKey {
        case bookUUID = "book_uuid"
        case bookPK = "book_pk"
        case state, generation, documents, analytics
        case lastWebhookAt = "last_webhook_at"
        case lastPolledAt = "last_polled_at"
        case nextPollAt = "next_poll_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bookUUID, forKey: .bookUUID)
        try container.encode(bookPK, forKey: .bookPK)
        try container.encode(state, forKey: .state)
        try container.encode(generation, forKey: .generation)
        try container.encode(documents, forKey: .documents)
        try container.encode(lastWebhookAt, forKey: .lastWebhookAt)
        try container.encode(lastPolledAt, forKey: .lastPolledAt)
        try container.encode(nextPollAt, forKey: .nextPollAt)
        try container.encode(analytics, forKey: .analytics)
    }

    public func jsonData(pretty: Bool = true) throws -> Data {
        try Self.encoder(pretty: pretty).encode(self)
    }

    static func encoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// RFC 3339 in UTC with seconds, e.g. `2026-11-29T05:41:01Z`.
    public static func rfc3339(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
    }
}
