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
