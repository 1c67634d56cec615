import BookWatchClocks
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
    /// The body could not be read to its end (the sender went away, the connection failed).
    case unreadable
}

/// `POST /webhooks/ocrolus`: the HTTP side of `WebhookAdmission` (bounded body, source
/// allowlist, Basic credentials, signature, payload decode, durable insert into the inbox through
/// the group-commit writer, and only then 200: the answers table of architecture.md).
public struct WebhookIngress: Sendable {
    /// The checks every delivery passes.
    public var admission: WebhookAdmission
    let writer: InboxWriter
    let health: ServiceHealth
    let clock: any WallClock
    let logger: Logger
    let observe: @Sendable (WebhookOutcome, TimeInterval) -> Void

    /// The route's handler: `admission`, then the group-commit `writer`.
    public init(
        bodyLimit: Int = 1 << 20,
        access: WebhookAccessPolicy = WebhookAccessPolicy(),
        verifier: WebhookVerifier?,
        writer: InboxWriter,
        health: ServiceHealth,
        clock: any WallClock,
        logger: Logger,
        observe: @escaping @Sendable (WebhookOutcome, TimeInterval) -> Void = { _, _ in }
    ) {
        admission = WebhookAdmission(bodyLimit: bodyLimit, access: access, verifier: verifier)
        self.writer = writer
        self.health = health
        self.clock = clock
        self.logger = logger
        self.observe = observe
    }

    /// Answers one `POST /webhooks/ocrolus`.
    public func handle(_ request: Request, context: IngressRequestContext) async -> Response {
        let started = ContinuousClock.now
        var log = LogContext(logger: logger, requestID: request.headers[Self.requestIDField])
        let answer = await answer(request, context: context, log: &log)
        let elapsed = ContinuousClock.now - started
        observe(answer.outcome, elapsed.inSeconds)
        return Self.response(answer)
    }

    static let requestIDField = HTTPField.Name(WebhookAdmission.Header.requestID)!  // a valid constant field name

    /// The names admission asks for, parsed once (`HTTPField.Name(_:)` checks and lowercases the
    /// name at every call: four to six per delivery).
    static let fieldNames: [String: HTTPField.Name] = Dictionary(
        uniqueKeysWithValues: [
            WebhookAdmission.Header.requestID, WebhookAdmission.Header.timestamp, WebhookAdmission.Header.signature,
            WebhookAdmission.Header.forwardedFor, WebhookAdmission.Header.authorization, WebhookAdmission.Header.contentLength,
        ].compactMap { name in HTTPField.Name(name).map { (name, $0) } }
    )

    /// The answer for a body whose reading failed: over the limit is 413; anything else (the
    /// sender went away, the connection failed) is not a body too large but one not read, 400.
    package static func bodyNotRead(_ error: any Error, _ admission: WebhookAdmission) -> WebhookAnswer {
        error is NIOTooManyBytesError ? admission.bodyTooLarge : .refuse(.unreadable, 400, "the body could not be read to its end")
    }

    /// What a delivery's log lines carry (request_id, book_uuid), made into metadata only when a
    /// line is written: building a logger's metadata for every delivery, most of which log
    /// nothing (an accepted one logs at debug), was a cost of the route.
    struct LogContext {
        let logger: Logger
        let requestID: String?
        var bookUUID: BookUUID?

        func metadata(_ extra: Logger.Metadata) -> Logger.Metadata {
            var metadata = extra
            metadata["request_id"] = "\(requestID ?? "-")"
            if let bookUUID { metadata["book_uuid"] = "\(bookUUID)" }
            return metadata
        }
    }

    private func answer(_ request: Request, context: IngressRequestContext, log: inout LogContext) async -> WebhookAnswer {
        let headers = request.headers
        let header = { (name: String) in (Self.fieldNames[name] ?? HTTPField.Name(name)).flatMap { headers[$0] } }
        let client: String?
        switch admission.screen(header: header, peer: context.peerAddress) {
        case .refuse(let answer): return refused(answer, log)
        case .read(let address): client = address
        }
        var request = request
        let body: [UInt8]
        do {
            body = Array(try await request.collectBody(upTo: admission.bodyLimit).readableBytesView)
        } catch {
            return refused(Self.bodyNotRead(error, admission), log)
        }
        switch admission.admit(body: body, header: header, client: client, now: clock.now()) {
        case .refuse(let answer):
            return refused(answer, log)
        case .store(let delivery, let decoded):
            log.bookUUID = decoded.bookUUID
            let answer = await WebhookAdmission.store(delivery, health: health) { try await writer.append($0) }
            if answer.status != 200 { return refused(answer, log) }
            log.logger.debug(
                answer.outcome == .duplicate ? "duplicate webhook" : "webhook stored",
                metadata: log.metadata(["event": "\(decoded.eventName)"])
            )
            return answer
        }
    }

    private func refused(_ answer: WebhookAnswer, _ log: LogContext) -> WebhookAnswer {
        log.logger.info(
            "webhook refused",
            metadata: log.metadata([
                "outcome": "\(answer.outcome.rawValue)", "status": "\(answer.status)", "reason": "\(answer.reason ?? "-")",
            ])
        )
        return answer
    }

    static func response(_ answer: WebhookAnswer) -> Response {
        var headers: HTTPFields = [:]
        if answer.challengesBasic { headers[.wwwAuthenticate] = #"Basic realm="bookwatch""# }
        if let retryAfter = answer.retryAfter { headers[.retryAfter] = "\(retryAfter)" }
        let status = HTTPResponse.Status(code: answer.status)
        switch answer.outcome {
        case .accepted: return json(status, Self.acceptedBody, headers: headers)
        case .duplicate: return json(status, Self.duplicateBody, headers: headers)
        default: return json(status, ["status": "error", "error": answer.reason ?? answer.outcome.rawValue], headers: headers)
        }
    }

    /// The two bodies of a 200, encoded once (`JSONEncoder` per answer was about 2% of the ingress's CPU).
    static let acceptedBody = ByteBuffer(string: #"{"status":"accepted"}"#)
    static let duplicateBody = ByteBuffer(string: #"{"status":"duplicate"}"#)

    static func json(_ status: HTTPResponse.Status, _ body: ByteBuffer, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: body))
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: String], headers: HTTPFields = [:]) -> Response {
        json(status, ByteBuffer(bytes: (try? JSONEncoder.sorted.encode(object)) ?? Data()), headers: headers)
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
