import BookWatchClocks
import BookWatchCore
import Foundation

/// Ocrolus's organisation-level webhook management (`/v1/account/settings`), over the same
/// limiter, token and error classification as every other call (at `.urgent` priority: an
/// operator is waiting).
extension OcrolusClient {
    /// Every webhook of the organisation (`GET /webhooks`).
    public func webhooks() async throws -> [RegisteredWebhook] {
        let answer = try await webhookSettings("GET", "/webhooks")
        guard let list = answer as? [Any] else { throw Self.unexpected("/webhooks", "a list of webhooks") }
        return try list.map { entry in
            guard let webhook = RegisteredWebhook(json: entry) else { throw Self.unexpected("/webhooks", "webhooks with an id and a url") }
            return webhook
        }
    }

    /// One webhook (`GET /webhook/{id}`).
    public func webhook(id: String) async throws -> RegisteredWebhook {
        try Self.webhook(from: try await webhookSettings("GET", "/webhook/\(Self.escaped(id))"), path: "/webhook/{id}")
    }

    /// Registers a webhook (`POST /webhook`) and answers it as Ocrolus stored it.
    public func registerWebhook(url: String, description: String, events: [String]) async throws -> RegisteredWebhook {
        let body: [String: Any] = ["webhook": ["url": url, "description": description], "event_names": events]
        return try Self.webhook(from: try await webhookSettings("POST", "/webhook", body: body), path: "/webhook")
    }

    /// Changes a webhook (`POST /webhook/{id}/update`): what is nil keeps its value (the current
    /// webhook is read first, so the update always sends the whole of it).
    public func updateWebhook(id: String, url: String?, description: String?, events: [String]?) async throws -> RegisteredWebhook {
        let current = try await webhook(id: id)
        let body: [String: Any] = [
            "webhook": ["url": url ?? current.url, "description": description ?? current.description],
            "event_names": events ?? current.eventNames,
        ]
        let answer = try await webhookSettings("POST", "/webhook/\(Self.escaped(id))/update", body: body)
        if let updated = try? Self.webhook(from: answer, path: "/webhook/{id}/update") { return updated }
        return try await webhook(id: id)
    }

    /// Deletes a webhook (`DELETE /webhook/{id}/delete`).
    public func deleteWebhook(id: String) async throws {
        _ = try await webhookSettings("DELETE", "/webhook/\(Self.escaped(id))/delete")
    }

    /// What Ocrolus reports it delivered for a webhook (`GET /webhook/{id}/events`).
    public func webhookEvents(id: String) async throws -> [WebhookDeliveryReport] {
        let answer = try await webhookSettings("GET", "/webhook/\(Self.escaped(id))/events")
        guard let list = answer as? [Any] else { throw Self.unexpected("/webhook/{id}/events", "a list of deliveries") }
        return list.compactMap(WebhookDeliveryReport.init(json:))
    }

    /// Asks Ocrolus to send a test event to a webhook (`POST /webhook/{id}/test`).
    public func testWebhook(id: String) async throws {
        _ = try await webhookSettings("POST", "/webhook/\(Self.escaped(id))/test", body: [:])
    }

    /// Sets a webhook's signing secret (`POST /webhook/{id}/rotate-secret`); deliveries are
    /// signed with it from then on.
    public func rotateWebhookSecret(id: String, secret: String) async throws {
        _ = try await webhookSettings("POST", "/webhook/\(Self.escaped(id))/rotate-secret", body: ["secret_key": secret])
    }

    /// One management call: the `response` of the envelope, or the error it declares.
    private func webhookSettings(_ method: String, _ path: String, body: [String: Any]? = nil) async throws -> Any? {
        let bytes = try body.map { Array(try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys])) }
        let endpoint = "webhook_settings"
        let (response, _) = try await send(method: method, path: "/v1/account/settings" + path, endpoint: endpoint, priority: .urgent, body: bytes)
        let retryAfter = RetryAfter.parse(response.header("Retry-After"), now: clock.now())
        if let error = V1Envelope.declaredError(httpStatus: response.status, body: response.body, endpoint: endpoint, retryAfter: retryAfter) {
            throw error
        }
        guard !response.body.isEmpty else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body), options: [.fragmentsAllowed]) else {
            throw Self.unexpected(path, "JSON")
        }
        if let envelope = object as? [String: Any], envelope.keys.contains("response") { return envelope["response"] }
        return object
    }

    private static func webhook(from answer: Any?, path: String) throws -> RegisteredWebhook {
        guard let answer, let webhook = RegisteredWebhook(json: answer) else { throw unexpected(path, "a webhook with an id and a url") }
        return webhook
    }

    private static func unexpected(_ path: String, _ expected: String) -> OcrolusError {
        OcrolusError(.permanent, endpoint: "webhook_settings", message: "\(path) did not answer \(expected)")
    }

    private static func escaped(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? id
    }
}
