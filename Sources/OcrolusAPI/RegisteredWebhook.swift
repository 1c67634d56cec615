import Foundation

/// One organisation-level webhook as Ocrolus's management API describes it.
public struct RegisteredWebhook: Sendable, Equatable, Codable {
    /// Its id (a number in the documented answers; kept as text so a string id also works).
    public var id: String
    /// Where Ocrolus delivers.
    public var url: String
    /// The description given at registration.
    public var description: String
    /// The events subscribed.
    public var eventNames: [String]
    /// Whether a signing secret is set, when the answer says (nil: it does not).
    public var hasSecret: Bool?

    /// A webhook description.
    public init(id: String, url: String, description: String, eventNames: [String], hasSecret: Bool?) {
        self.id = id
        self.url = url
        self.description = description
        self.eventNames = eventNames
        self.hasSecret = hasSecret
    }

    /// The same webhook with any password in its URL (HTTP Basic credentials, the documented
    /// alternative to a signing secret) replaced by `***`: what is printed and logged.
    public var redacted: RegisteredWebhook {
        var copy = self
        copy.url = Self.redacting(url)
        return copy
    }

    /// `url` with the password of its user information replaced by `***`.
    public static func redacting(_ url: String) -> String {
        guard var parts = URLComponents(string: url), parts.password != nil else { return url }
        parts.password = "***"
        return parts.string ?? url
    }

    /// Reads one webhook object of an answer; nil when it has no id or no url.
    init?(json: Any) {
        guard let object = json as? [String: Any], let id = Self.text(object["id"] ?? object["webhook_id"]),
            let url = object["url"] as? String
        else { return nil }
        self.id = id
        self.url = url
        description = object["description"] as? String ?? ""
        eventNames = (object["event_names"] ?? object["events"]) as? [String] ?? []
        hasSecret = object["has_secret"] as? Bool
    }

    /// A number or a string as text.
    static func text(_ value: Any?) -> String? {
        switch value {
        case let string as String where !string.isEmpty: string
        case let number as Int: String(number)
        default: nil
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, url, description
        case eventNames = "event_names"
        case hasSecret = "has_secret"
    }
}
