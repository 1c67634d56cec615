import Crypto
import Foundation

/// Verifies Ocrolus webhook signatures: `Webhook-Signature` is the hex HMAC-SHA256 of
/// `"{Webhook-Timestamp}.{Webhook-Request-Id}.{raw body}"` under the webhook secret.
///
/// Several secrets may be accepted at once (rotation). The MAC comparison is constant-time
/// (`HMAC.isValidAuthenticationCode`); the timestamp must lie within `tolerance` of now, in both
/// directions.
///
/// ```swift
/// let verifier = try WebhookVerifier(secrets: ["whsec-0123456789abcdef"])
/// try verifier.verify(body: bytes, timestamp: ts, requestID: id, signature: sig, now: clock.now())
/// ```
public struct WebhookVerifier: Sendable {
    /// The shortest secret Ocrolus issues.
    public static let minimumSecretLength = 16
    /// The longest secret Ocrolus issues.
    public static let maximumSecretLength = 128

    /// Raw key bytes; `SymmetricKey` is not `Sendable` in swift-crypto 3, so keys are made per check.
    private let keys: [[UInt8]]
    /// The largest skew accepted between a delivery's timestamp and now.
    public let tolerance: TimeInterval

    /// - Throws: `WebhookSecretError` when no secret is given or one is shorter than 16 or longer
    ///   than 128 characters (Ocrolus's documented range).
    public init(secrets: [String], tolerance: TimeInterval = 300) throws(WebhookSecretError) {
        guard !secrets.isEmpty else { throw WebhookSecretError(reason: "no webhook secret given") }
        for (index, secret) in secrets.enumerated() {
            let length = secret.count
            guard length >= Self.minimumSecretLength else {
                throw WebhookSecretError(reason: "webhook secret #\(index + 1) is \(length) characters; at least 16 are required")
            }
            guard length <= Self.maximumSecretLength else {
                throw WebhookSecretError(reason: "webhook secret #\(index + 1) is \(length) characters; at most 128 are allowed")
            }
        }
        keys = secrets.map { Array($0.utf8) }
        self.tolerance = tolerance
    }

    /// Checks one delivery; throws a `WebhookSignatureError` saying what is wrong.
    public func verify(
        body: some Collection<UInt8>,
        timestamp: String?,
        requestID: String?,
        signature: String?,
        now: Date
    )
        throws(WebhookSignatureError)
    {
        guard let timestamp, !timestamp.isEmpty else { throw .missingHeader("Webhook-Timestamp") }
        guard let requestID else { throw .missingHeader("Webhook-Request-Id") }
        guard let signature, !signature.isEmpty else { throw .missingHeader("Webhook-Signature") }
        guard let seconds = Self.parseTimestamp(timestamp) else { throw .malformedTimestamp }
        let skew = now.timeIntervalSince1970 - Double(seconds)
        guard abs(skew) <= tolerance else { throw .staleTimestamp(skewSeconds: Int(skew.rounded())) }
        let candidates = Self.parseSignatures(signature)
        guard !candidates.isEmpty else { throw .malformedSignature }

        var message = [UInt8]()
        message.reserveCapacity(timestamp.utf8.count + requestID.utf8.count + body.count + 2)
        message += timestamp.utf8
        message.append(UInt8(ascii: "."))
        message += requestID.utf8
        message.append(UInt8(ascii: "."))
        message += body
        for bytes in keys {
            let key = SymmetricKey(data: bytes)
            for candidate in candidates
            where HMAC<SHA256>.isValidAuthenticationCode(candidate, authenticating: message, using: key) {
                return
            }
        }
        throw .mismatch
    }

    /// A short public name for a secret: the first 12 hex digits of SHA-256 over a fixed label and
    /// the secret. `/readyz` lists the fingerprints of the secrets `serve` accepts, so
    /// `bookwatch webhooks rotate-secret` can see that a new secret is live before rotating at
    /// Ocrolus, without any secret leaving the process. 48 bits reveal nothing of a generated
    /// secret (256 random bits); a guessable secret is guessable without them.
    public static func fingerprint(_ secret: String) -> String {
        let digest = SHA256.hash(data: Array("bookwatch-webhook-secret:\(secret)".utf8))
        return digest.prefix(6).map { String(format: "%02x", $0) }.joined()
    }

    /// A new secret: 32 bytes from the system's cryptographic generator, as 64 hex digits
    /// (within Ocrolus's 16 to 128 characters, and safe in a comma-separated setting).
    public static func generateSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Computes the signature header value (the simulator signs with this).
    public static func sign(body: some Collection<UInt8>, timestamp: String, requestID: String, secret: String) -> String {
        var message = Array(timestamp.utf8)
        message.append(UInt8(ascii: "."))
        message += requestID.utf8
        message.append(UInt8(ascii: "."))
        message += body
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined()
    }

    /// Unix seconds: ASCII digits only, at most 12 of them (no sign, no fraction, no overflow).
    static func parseTimestamp(_ text: String) -> Int64? {
        let utf8 = text.utf8
        guard !utf8.isEmpty, utf8.count <= 12 else { return nil }
        var value: Int64 = 0
        for byte in utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// One or more 64-digit hex MACs (either case), separated by commas or spaces; an optional
    /// `v1=` or `sha256=` prefix on each is accepted. Anything else yields no candidate.
    static func parseSignatures(_ header: String) -> [[UInt8]] {
        guard header.utf8.count <= 1024 else { return [] }
        return header.split(whereSeparator: { $0 == "," || $0 == " " }).compactMap { part in
            var text = Substring(part)
            for prefix in ["v1=", "sha256="] where text.hasPrefix(prefix) { text = text.dropFirst(prefix.count) }
            return decodeHex(text, byteCount: 32)
        }
    }

    static func decodeHex(_ text: Substring, byteCount: Int) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count == byteCount * 2 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(byteCount)
        var index = 0
        while index < utf8.count {
            guard let high = hexValue(utf8[index]), let low = hexValue(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// A configured secret that Ocrolus would not accept.
public struct WebhookSecretError: Error, CustomStringConvertible, Equatable {
    /// Why the secret cannot be used.
    public let reason: String
    /// The reason.
    public var description: String { reason }
}

/// Why a delivery's signature was refused (never contains the secret or the expected MAC).
public enum WebhookSignatureError: Error, Equatable, CustomStringConvertible {
    case missingHeader(String)
    case malformedTimestamp
    case staleTimestamp(skewSeconds: Int)
    case malformedSignature
    case mismatch

    /// One line naming the problem.
    public var description: String {
        switch self {
        case .missingHeader(let name): "missing \(name) header"
        case .malformedTimestamp: "Webhook-Timestamp is not Unix seconds"
        case .staleTimestamp(let skew): "Webhook-Timestamp is \(abs(skew)) s \(skew >= 0 ? "old" : "in the future"), outside the tolerance"
        case .malformedSignature: "Webhook-Signature is not a hex HMAC-SHA256"
        case .mismatch: "Webhook-Signature does not match"
        }
    }
}
