import struct Foundation.Date

/// One endpoint's stored analytics for one generation of a Book.
public struct AnalyticsResult: Sendable, Hashable {
    /// The Book.
    public var bookUUID: BookUUID
    /// The generation the analytics belong to.
    public var generation: Int
    /// The analytics endpoint (`summary`, ...).
    public var endpoint: String
    /// The answer as Ocrolus sent it.
    public var body: [UInt8]
    /// When it was fetched.
    public var retrievedAt: Date

    /// One endpoint's result for one generation.
    public init(bookUUID: BookUUID, generation: Int, endpoint: String, body: [UInt8], retrievedAt: Date) {
        self.bookUUID = bookUUID
        self.generation = generation
        self.endpoint = endpoint
        self.body = body
        self.retrievedAt = retrievedAt
    }
}

/// One page of a paged endpoint's analytics (`enriched_txns`), stored as it arrives so a retry
/// after a crash or a 425 asks only for the pages not stored yet; the pages become one
/// `AnalyticsResult` when the last one is in.
public struct AnalyticsPage: Sendable, Hashable {
    /// The Book.
    public var bookUUID: BookUUID
    /// The generation the page belongs to.
    public var generation: Int
    /// The analytics endpoint.
    public var endpoint: String
    /// Items skipped before this page.
    public var offset: Int
    /// The page as Ocrolus sent it.
    public var body: [UInt8]
    /// When it was fetched.
    public var retrievedAt: Date

    /// One page of one endpoint's result for one generation.
    public init(bookUUID: BookUUID, generation: Int, endpoint: String, offset: Int, body: [UInt8], retrievedAt: Date) {
        self.bookUUID = bookUUID
        self.generation = generation
        self.endpoint = endpoint
        self.offset = offset
        self.body = body
        self.retrievedAt = retrievedAt
    }
}
