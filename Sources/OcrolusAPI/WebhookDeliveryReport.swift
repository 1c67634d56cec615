import Foundation

/// One delivery of a webhook as Ocrolus reports it (`GET .../webhook/{id}/events`). Fields the
/// answer lacks stay nil; nothing is invented.
public struct WebhookDeliveryReport: Sendable, Equatable, Codable {
    /// `Webhook-Request-Id` of the delivery.
    public var requestID: String?
    /// The event delivered.
    public var eventName: String?
    /// The receiver's answer (0: none in time).
    public var httpStatus: Int?
    /// Which attempt (0 the first).
    public var attempt: Int?
    /// When it was sent, as the answer spells it.
    public var sentAt: String?

    /// A report.
    public init(requestID: String?, eventName: String?, httpStatus: Int?, attempt: Int?, sentAt: String?) {
        self.requestID = requestID
        self.eventName = eventName
        self.httpStatus = httpStatus
        self.attempt = attempt
        self.sentAt = sentAt
    }

    init?(json: Any) {
        guard let object = json as? [String: Any] else { return nil }
        requestID = RegisteredWebhook.text(object["request_id"])
        eventName = (object["event_name"] ?? object["event"]) as? String
        httpStatus = (object["http_status"] ?? object["response_status"] ?? object["status_code"]) as? Int
        attempt = object["attempt"] as? Int
        sentAt = (object["sent_at"] ?? object["created_at"] ?? object["timestamp"]) as? String
    }

    enum CodingKeys: String, CodingKey {
        case requestID = "request_id"
        case eventName = "event_name"
        case httpStatus = "http_status"
        case attempt
        case sentAt = "sent_at"
    }
}
