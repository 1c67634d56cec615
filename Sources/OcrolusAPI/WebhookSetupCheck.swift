import BookWatchCore
import Foundation

/// Compares an organisation's registered webhooks with what bookwatch needs: a webhook that
/// delivers to this service, every event of `WebhookSubscription.needs` subscribed, and a
/// signing secret on both sides. `bookwatch webhooks check` prints the gaps (and exits non-zero
/// when there are any); `serve` logs them once at startup.
public struct WebhookSetupCheck: Sendable, Equatable {
    /// One thing missing, with what it costs.
    public struct Gap: Sendable, Equatable, Codable, CustomStringConvertible {
        /// The webhook it is about (nil: about the organisation's set).
        public var webhookID: String?
        /// What is wrong and what it costs.
        public var problem: String

        /// The webhook, then the problem.
        public var description: String { webhookID.map { "webhook \($0): \(problem)" } ?? problem }

        enum CodingKeys: String, CodingKey {
            case webhookID = "webhook_id"
            case problem
        }
    }

    /// The webhooks that deliver to this service.
    public var serving: [RegisteredWebhook]
    /// What is missing; empty when the setup is complete.
    public var gaps: [Gap]
    /// Facts worth saying that are not gaps (Ocrolus does not say whether a secret is set).
    public var notes: [String]

    /// The path `serve` takes deliveries on.
    public static let webhookPath = "/webhooks/ocrolus"

    /// Checks `registered` against the needs. `serviceURL` is the URL Ocrolus should deliver to
    /// (`BOOKWATCH_PUBLIC_URL`); without it, any webhook whose path is `/webhooks/ocrolus` counts
    /// as this service's. `secretConfigured`: whether `serve` verifies signatures.
    public init(registered: [RegisteredWebhook], serviceURL: String?, secretConfigured: Bool) {
        let target = serviceURL.map(Self.normalized)
        serving = registered.filter { webhook in
            let url = Self.normalized(webhook.url)
            return target.map { url == $0 } ?? url.hasSuffix(Self.webhookPath)
        }
        var gaps: [Gap] = []
        var notes: [String] = []
        if serving.isEmpty {
            let place = serviceURL.map { "to \(RegisteredWebhook.redacting($0))" } ?? "to a bookwatch endpoint (a URL ending in \(Self.webhookPath))"
            let others =
                registered.isEmpty
                ? "the organisation has none" : "registered: \(registered.map { RegisteredWebhook.redacting($0.url) }.joined(separator: ", "))"
            gaps.append(
                Gap(
                    webhookID: nil,
                    problem: "no webhook delivers \(place) (\(others)); every change is then found by polling only: run bookwatch webhooks register"
                )
            )
        } else {
            // Events are delivered by every registration that subscribes them: the union counts.
            for need in WebhookSubscription.missing(from: serving.flatMap(\.eventNames)) {
                gaps.append(
                    Gap(webhookID: serving.count == 1 ? serving[0].id : nil, problem: "\(need.event.name) is not subscribed: \(need.withoutIt)")
                )
            }
            for webhook in serving where webhook.hasSecret == false {
                gaps.append(
                    Gap(
                        webhookID: webhook.id,
                        problem:
                            "no signing secret is set at Ocrolus: deliveries cannot be verified (run bookwatch webhooks rotate-secret \(webhook.id))"
                    )
                )
            }
            if serving.contains(where: { $0.hasSecret == nil }) {
                notes.append("Ocrolus's answer does not say whether a secret is set; bookwatch webhooks test shows whether deliveries verify")
            }
            if serving.count > 1 {
                notes.append(
                    "\(serving.count) webhooks deliver here: each event arrives once per webhook (the inbox keeps duplicates harmless, at the cost of the deliveries)"
                )
            }
        }
        if !secretConfigured {
            gaps.append(
                Gap(webhookID: nil, problem: "BOOKWATCH_WEBHOOK_SECRET is not set: serve accepts deliveries without verifying their signature")
            )
        }
        self.gaps = gaps
        self.notes = notes
    }

    /// Lower-case scheme and host, no trailing slash, no default port: URLs that Ocrolus treats
    /// as the same compare equal.
    public static func normalized(_ url: String) -> String {
        guard var parts = URLComponents(string: url.trimmingCharacters(in: .whitespaces)) else { return url }
        parts.scheme = parts.scheme?.lowercased()
        parts.host = parts.host?.lowercased()
        if (parts.scheme == "https" && parts.port == 443) || (parts.scheme == "http" && parts.port == 80) { parts.port = nil }
        while parts.path.count > 1 && parts.path.hasSuffix("/") { parts.path.removeLast() }
        return parts.string ?? url
    }
}
