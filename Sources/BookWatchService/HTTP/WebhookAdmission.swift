import BookWatchStore
import Foundation
import OcrolusAPI

/// How a delivery is answered, without HTTP: the status, the outcome label and, for a refusal,
/// the reason (and whether to ask for Basic credentials or a retry).
public struct WebhookAnswer: Sendable, Equatable {
    /// What happened to the delivery.
    public var outcome: WebhookOutcome
    /// The HTTP status answered.
    public var status: Int
    /// Why it was refused (nil when the delivery was stored or was a duplicate).
    public var reason: String?
    /// A 401 for missing Basic credentials asks for them (`WWW-Authenticate`).
    public var challengesBasic = false
    /// Seconds after which a retry may succeed (`Retry-After`), for a 503.
    public var retryAfter: Int?

    static func refuse(_ outcome: WebhookOutcome, _ status: Int, _ reason: String) -> WebhookAnswer {
        WebhookAnswer(outcome: outcome, status: status, reason: reason)
    }
}

/// The one way a webhook delivery gets in (architecture.md, the answers table), transport-free so
/// that the HTTP route and the simulated deployments run the same checks in the same order:
/// 1. the source address and HTTP Basic credentials, from the headers alone (`screen`: a
///    stranger's body is never read);
/// 2. the declared body length (`screen`), then the body read up to `bodyLimit` (the caller);
/// 3. the signature over the raw bytes, then the payload (`admit`), giving the inbox row;
/// 4. the durable insert (`store`), and only then a 200.
public struct WebhookAdmission: Sendable {
    /// The largest body accepted (413 above).
    public var bodyLimit: Int
    /// The source and credential checks.
    public var access: WebhookAccessPolicy
    /// The signature check, nil when no secret is set.
    public var verifier: WebhookVerifier?

    /// The checks of a deployment.
    public init(bodyLimit: Int = 1 << 20, access: WebhookAccessPolicy = WebhookAccessPolicy(), verifier: WebhookVerifier?) {
        self.bodyLimit = bodyLimit
        self.access = access
        self.verifier = verifier
    }

    /// Header names the checks read (matched without regard to case by the caller's lookup).
    public enum Header {
        /// The delivery's unique id.
        public static let requestID = "Webhook-Request-Id"
        /// When Ocrolus signed it (Unix seconds).
        public static let timestamp = "Webhook-Timestamp"
        /// The HMAC-SHA256 signature.
        public static let signature = "Webhook-Signature"
        /// The sender as a proxy saw it.
        public static let forwardedFor = "X-Forwarded-For"
        /// HTTP Basic credentials.
        public static let authorization = "Authorization"
        /// The declared body length.
        public static let contentLength = "Content-Length"
    }

    /// What the headers alone decide: the client's address when the body may be read, or the refusal.
    public enum Screening: Sendable, Equatable {
        case read(client: String?)
        case refuse(WebhookAnswer)
    }

    /// Steps 1 and 2: source allowlist, Basic credentials, declared length.
    public func screen(header: (String) -> String?, peer: String?) -> Screening {
        let client = access.clientAddress(peer: peer, forwardedFor: header(Header.forwardedFor))
        guard access.isAllowed(client) else {
            return .refuse(.refuse(.forbiddenSource, 403, "source address \(client ?? "unknown") is not allowed"))
        }
        guard access.credentialsAccepted(header(Header.authorization)) else {
            var answer = WebhookAnswer.refuse(.badSignature, 401, "missing or wrong HTTP Basic credentials")
            answer.challengesBasic = true
            return .refuse(answer)
        }
        if let declared = header(Header.contentLength).flatMap(Int.init), declared > bodyLimit {
            return .refuse(.refuse(.tooLarge, 413, "body of \(declared) bytes is over the \(bodyLimit)-byte limit"))
        }
        return .read(client: client)
    }

    /// The answer for a body that could not be read within `bodyLimit`.
    public var bodyTooLarge: WebhookAnswer { .refuse(.tooLarge, 413, "body is over the \(bodyLimit)-byte limit") }

    /// What the body decides: the inbox row and the decoded payload, or the refusal.
    public enum Admission: Sendable {
        case store(InboxDelivery, DecodedWebhook)
        case refuse(WebhookAnswer)
    }

    /// Step 3: signature over the raw bytes, then the payload; `client` is what `screen` answered.
    public func admit(body: [UInt8], header: (String) -> String?, client: String?, now: Date) -> Admission {
        let requestID = header(Header.requestID)
        // Signed as sent; stored only when it names something: an empty id would make every
        // delivery without one a "duplicate" of the first, answered 200 and never stored.
        let storedID = requestID.flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
        if let verifier {
            do {
                try verifier.verify(
                    body: body,
                    timestamp: header(Header.timestamp),
                    requestID: requestID,
                    signature: header(Header.signature),
                    now: now
                )
            } catch {
                return .refuse(.refuse(.badSignature, 401, error.description))
            }
        }
        let decoded: DecodedWebhook
        do {
            decoded = try DecodedWebhook.decode(body)
        } catch {
            return .refuse(.refuse(.malformed, 400, error.reason))
        }
        let delivery = InboxDelivery(
            requestID: storedID,
            receivedAt: now,
            bookUUID: decoded.bookUUID,
            bookPK: decoded.bookPK,
            event: decoded.eventName,
            body: body,
            remoteAddress: client,
            // Only a delivery that passed a check of its origin may stand in for a status call.
            authenticated: verifier != nil || access.authenticates,
            hint: decoded.hint
        )
        return .store(delivery, decoded)
    }

    /// Step 4: the durable insert through `append` (the group-commit `InboxWriter` in `serve`);
    /// 200 only once it committed, 503 when it could not be stored (Ocrolus retries).
    public static func store(
        _ delivery: InboxDelivery,
        health: ServiceHealth,
        append: (InboxDelivery) async throws -> InboxAppendOutcome
    ) async -> WebhookAnswer {
        do {
            switch try await append(delivery) {
            case .stored:
                health.webhookReceived(at: delivery.receivedAt)
                return WebhookAnswer(outcome: .accepted, status: 200)
            case .duplicate:
                return WebhookAnswer(outcome: .duplicate, status: 200)
            }
        } catch {
            var answer = WebhookAnswer.refuse(.unavailable, 503, "the delivery could not be stored; retry later")
            answer.retryAfter = 5
            return answer
        }
    }

    /// All four steps for a delivery whose body is in hand (the simulated deployments).
    public func receive(
        headers: [(String, String)],
        body: [UInt8],
        peer: String?,
        now: Date,
        health: ServiceHealth,
        append: (InboxDelivery) async throws -> InboxAppendOutcome
    ) async -> WebhookAnswer {
        let header = { (name: String) in headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1 }
        let client: String?
        switch screen(header: header, peer: peer) {
        case .refuse(let answer): return answer
        case .read(let address): client = address
        }
        guard body.count <= bodyLimit else { return bodyTooLarge }
        switch admit(body: body, header: header, client: client, now: now) {
        case .refuse(let answer): return answer
        case .store(let delivery, _): return await Self.store(delivery, health: health, append: append)
        }
    }
}
