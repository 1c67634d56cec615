import BookWatchCore
import Foundation

/// One webhook delivery as received, stored before it is answered 200.
public struct InboxDelivery: Sendable, Equatable {
    /// `Webhook-Request-Id`, when sent: the inbox refuses a second delivery with it.
    public var requestID: String?
    /// When it arrived.
    public var receivedAt: Date
    /// The Book the body names by uuid, if it does.
    public var bookUUID: BookUUID?
    /// The Book the body names by pk, if it does.
    public var bookPK: Int?
    /// The event name as sent (empty for the thin body).
    public var event: String
    /// The body as received.
    public var body: [UInt8]
    /// The sender as the allowlist saw it.
    public var remoteAddress: String?
    /// The delivery passed an authentication check (signature, HTTP Basic or the allowlist).
    public var authenticated: Bool
    /// The hint admission decoded from the body (nil for rows stored before it was kept, or by a
    /// caller that did not decode: the watcher then decodes the body).
    public var hint: WebhookHint?

    /// A delivery as received.
    public init(
        requestID: String?,
        receivedAt: Date,
        bookUUID: BookUUID?,
        bookPK: Int?,
        event: String,
        body: [UInt8],
        remoteAddress: String? = nil,
        authenticated: Bool = false,
        hint: WebhookHint? = nil
    ) {
        self.hint = hint
        self.authenticated = authenticated
        self.requestID = requestID
        self.receivedAt = receivedAt
        self.bookUUID = bookUUID
        self.bookPK = bookPK
        self.event = event
        self.body = body
        self.remoteAddress = remoteAddress
    }
}

/// What appending a delivery did.
public enum InboxAppendOutcome: Sendable, Equatable {
    case stored(id: Int64)
    case duplicate
}
