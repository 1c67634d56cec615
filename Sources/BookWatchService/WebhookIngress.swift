import BookWatchCore
import BookWatchStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import OcrolusAPI

/// How a delivery was answered (the `outcome` label of `bookwatch_webhooks_received_total`).
public enum WebhookOutcome: String, Sendable, CaseIterable {
    case accepted, duplicate
    case badSignature = "bad_signature"
    case forbiddenSource = "forbidden_source"
    case malformed
    case tooLarge = "too_large"
    case unavailable
}

/// `POST /webhooks/ocrolus`: bounded body, source allowlist, Basic credentials, signature,
/// payload decode, durable insert into the inbox, and only then 200 (the answers table of
/// architecture.md).
public struct WebhookIngress: Sendable {
    public var bodyLimit: Int
    public var access: WebhookAccessPolicy
    public var verifier: WebhookVerifier?
    let writer: InboxWriter
    let health: ServiceHealth
    let clock: any WallClock
    let logger: Logger
    let observe: @Sendable (WebhookOutcome, TimeInterval) -> Void

    public init(
        bodyLimit: Int = 1 << 20, access: WebhookAccessPolicy = WebhookAccessPolicy(), verifier: WebhookVerifier?,
        writer: InboxWriter, health: ServiceHealth, clock: any WallClock, logger: Logger,
        observe: @escaping @Sendable (WebhookOutcome, TimeInterval) -> Void = { _, _ in }
    ) {
        self.bodyLimit = bodyLimit
        self.access = access
        self.verifier = verifier
        self.writer = writer
        self.health = health
        self.clock = clock
        self.logger = logger
        self.observe = observe
    }

    public func handle(_ request: Request, context: IngressRequestContext) async -> Response {
        let started = ContinuousClock.now
        let requestID = request.headers[Self.requestIDField]
        var logger = self.logger
        logger[metadataKey: "request_id"] = "\(requestID ?? "-")"
        let (outcome, response) = await answer(request, context: context, requestID: requestID, logger: &logger)
        let elapsed = ContinuousClock.now - started
        observe(outcome, elapsed.inSeconds)
        return response
    }

    static let requestIDField = HTTPField.Name("Webhook-Request-Id")!  // a valid constant field name
    static let timestampField = HTTPField.Name("Webhook-Timestamp")!  // a valid constant field name
    static let signatureField = HTTPField.Name("Webhook-Signature")!  // a valid constant field name
    static let forwardedForField = HTTPField.Name("X-Forwarded-For")!  // a valid constant field name

    private func answer(_ request: Request, context: IngressRequestContext, requestID: String?, logger: inout Logger)
        async -> (WebhookOutcome, Response)
    {
        // 1. Source address and HTTP Basic credentials, from the headers alone: a stranger's body
        //    is never read.
        let client = access.clientAddress(peer: context.peerAddress, forwardedFor: request.headers[Self.forwardedForField])
        guard access.isAllowed(client) else {
            return reject(.forbiddenSource, .forbidden, "source address \(client ?? "unknown") is not allowed", logger)
        }
        guard access.credentialsAccepted(request.headers[.authorization]) else {
            return reject(.badSignature, .unauthorized, "missing or wrong HTTP Basic credentials", logger,
                          headers: [.wwwAuthenticate: #"Basic realm="bookwatch""#])
        }
        // 2. Bounded raw body: refuse a declared length over the limit before reading anything.
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > bodyLimit {
            return reject(.tooLarge, .contentTooLarge, "body of \(declared) bytes is over the \(bodyLimit)-byte limit", logger)
        }
        var request = request
        let body: [UInt8]
        do {
            body = Array(try await request.collectBody(upTo: bodyLimit).readableBytesView)
        } catch {
            return reject(.tooLarge, .contentTooLarge, "body is over the \(bodyLimit)-byte limit", logger)
        }
        // 4. Signature over the raw bytes.
        let now = clock.now()
        if let verifier {
            do {
                try verifier.verify(
                    body: body, timestamp: request.headers[Self.timestampField], requestID: requestID,
                    signature: request.headers[Self.signatureField], now: now)
            } catch {
                return reject(.badSignature, .unauthorized, error.description, logger)
            }
        }
        // 5. Payload.
        let decoded: DecodedWebhook
        do {
            decoded = try DecodedWebhook.decode(body)
        } catch {
            return reject(.malformed, .badRequest, error.reason, logger)
        }
        if let uuid = decoded.bookUUID { logger[metadataKey: "book_uuid"] = "\(uuid)" }
        // 6. Durable insert, then 200.
        let delivery = InboxDelivery(
            requestID: requestID, receivedAt: now, bookUUID: decoded.bookUUID, bookPK: decoded.bookPK,
            event: decoded.eventName, body: body, remoteAddress: client,
            // Only a delivery that passed a check of its origin may stand in for a status call.
            authenticated: verifier != nil || access.authenticates)
        do {
            switch try await writer.append(delivery) {
            case .stored:
                health.webhookReceived(at: now)
                logger.debug("webhook stored", metadata: ["event": "\(decoded.eventName)"])
                return (.accepted, Self.json(.ok, ["status": "accepted"]))
            case .duplicate:
                logger.debug("duplicate webhook", metadata: ["event": "\(decoded.eventName)"])
                return (.duplicate, Self.json(.ok, ["status": "duplicate"]))
            }
        } catch {
            return reject(.unavailable, .serviceUnavailable, "the delivery could not be stored; retry later", logger,
                          headers: [.retryAfter: "5"])
        }
    }

    private func reject(
        _ outcome: WebhookOutcome, _ status: HTTPResponse.Status, _ reason: String, _ logger: Logger, headers: HTTPFields = [:]
    ) -> (WebhookOutcome, Response) {
        logger.info("webhook refused", metadata: ["outcome": "\(outcome.rawValue)", "status": "\(status.code)", "reason": "\(reason)"])
        return (outcome, Self.json(status, ["status": "error", "error": reason], headers: headers))
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: String], headers: HTTPFields = [:]) -> Response {
        let data = (try? JSONEncoder.sorted.encode(object)) ?? Data()
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
