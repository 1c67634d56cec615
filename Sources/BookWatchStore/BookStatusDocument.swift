import BookWatchCore
import Foundation

/// The JSON of `bookwatch status --json` (and, one entry of it, `GET /books/{uuid}`).
///
/// The shape is a contract (architecture.md): every key is always present; times are RFC 3339
/// UTC strings or null.
public struct BookStatusDocument: Encodable, Sendable {
    /// The Books, in uuid order.
    public var books: [BookStatusEntry]
    /// Books per state (states with none left out).
    public var totals: [String: Int]

    /// The document of `records` and `totals`.
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
    /// A Book's documents, counted.
    public struct Documents: Encodable, Sendable {
        /// Documents confirmed by an answer.
        public var total: Int
        /// Of those, finished.
        public var finished: Int
        /// Of those, failed (rejected or failed at Ocrolus).
        public var failed: Int
    }

    /// The analytics job of the Book's current (or last) generation.
    public struct Analytics: Encodable, Sendable {
        /// `none` before a job exists, else the job state.
        public var state: String
        /// Real errors so far.
        public var attempts: Int
        /// When the results were stored (RFC 3339), or null.
        public var retrievedAt: String?
        /// The last error, or null.
        public var lastError: String?

        enum CodingKeys: String, CodingKey {
            case state, attempts
            case retrievedAt = "retrieved_at"
            case lastError = "last_error"
        }

        /// Every key present: null, not absent.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(state, forKey: .state)
            try container.encode(attempts, forKey: .attempts)
            try container.encode(retrievedAt, forKey: .retrievedAt)  // null, not absent
            try container.encode(lastError, forKey: .lastError)
        }
    }

    /// The Book.
    public var bookUUID: String
    /// The Book's pk, once known.
    public var bookPK: Int?
    /// The state (`BookPhase`).
    public var state: String
    /// The current generation.
    public var generation: Int
    /// The documents, counted.
    public var documents: Documents
    /// When the last webhook arrived (RFC 3339), or null.
    public var lastWebhookAt: String?
    /// When the last answer was applied (RFC 3339), or null.
    public var lastPolledAt: String?
    /// When the next poll is due (RFC 3339), or null.
    public var nextPollAt: String?
    /// The analytics job.
    public var analytics: Analytics
    /// The operator's label (`track --label`), or null. Added to the documented shape (keys
    /// only added, never changed, so scripts reading the contract keep working).
    public var label: String?
    /// The Book's name as Ocrolus gave it (status answers, else a signed webhook), or null.
    public var name: String?

    /// The entry of one Book.
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
        label = record.label
        name = record.name
    }

    enum CodingKeys: String, CodingKey {
        case bookUUID = "book_uuid"
        case bookPK = "book_pk"
        case state, generation, documents, analytics, label, name
        case lastWebhookAt = "last_webhook_at"
        case lastPolledAt = "last_polled_at"
        case nextPollAt = "next_poll_at"
    }

    /// Every key present: null, not absent.
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
        try container.encode(label, forKey: .label)
        try container.encode(name, forKey: .name)
    }

    /// Encodes with sorted keys, so the output is stable for scripts and diffs.
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
