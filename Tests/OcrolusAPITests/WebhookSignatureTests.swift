import Foundation
import Testing

@testable import OcrolusAPI

@Suite struct WebhookSignatureTests {
    func at(_ timestamp: String, offset: TimeInterval = 0) -> Date {
        Date(timeIntervalSince1970: (TimeInterval(timestamp) ?? 0) + offset)
    }

    @Test func everyValidVectorVerifies() throws {
        let vectors = try TestData.signatureVectors()
        #expect(vectors.valid.count == 3)
        for vector in vectors.valid + vectors.validVariants {
            let verifier = try WebhookVerifier(secrets: [vector.secret])
            #expect(throws: Never.self, "\(vector)") {
                try verifier.verify(
                    body: Array(vector.body.utf8),
                    timestamp: vector.timestamp,
                    requestID: vector.requestID,
                    signature: vector.signature,
                    now: at(vector.timestamp)
                )
            }
            // Signing reproduces the vector (lower-case hex).
            #expect(
                WebhookVerifier.sign(
                    body: Array(vector.body.utf8),
                    timestamp: vector.timestamp,
                    requestID: vector.requestID,
                    secret: vector.secret
                ) == vector.signature.lowercased()
            )
        }
    }

    @Test func everyInvalidVectorIsRefused() throws {
        let vectors = try TestData.signatureVectors()
        #expect(vectors.invalid.count == 3)
        for vector in vectors.invalid {
            let verifier = try WebhookVerifier(secrets: [vector.secret])
            #expect(throws: WebhookSignatureError.mismatch, "\(vector)") {
                try verifier.verify(
                    body: Array(vector.body.utf8),
                    timestamp: vector.timestamp,
                    requestID: vector.requestID,
                    signature: vector.signature,
                    now: at(vector.timestamp)
                )
            }
        }
    }

    @Test func anyOfSeveralSecretsIsAccepted() throws {
        let vector = try #require(try TestData.signatureVectors().valid.first)
        let verifier = try WebhookVerifier(secrets: ["the-new-secret-0123456789", vector.secret])
        try verifier.verify(
            body: Array(vector.body.utf8),
            timestamp: vector.timestamp,
            requestID: vector.requestID,
            signature: vector.signature,
            now: at(vector.timestamp)
        )
        let rotatedAway = try WebhookVerifier(secrets: ["the-new-secret-0123456789"])
        #expect(throws: WebhookSignatureError.mismatch) {
            try rotatedAway.verify(
                body: Array(vector.body.utf8),
                timestamp: vector.timestamp,
                requestID: vector.requestID,
                signature: vector.signature,
                now: at(vector.timestamp)
            )
        }
    }

    @Test func timestampToleranceAppliesInBothDirections() throws {
        let vector = try #require(try TestData.signatureVectors().valid.first)
        let verifier = try WebhookVerifier(secrets: [vector.secret], tolerance: 300)
        func check(_ offset: TimeInterval) throws {
            try verifier.verify(
                body: Array(vector.body.utf8),
                timestamp: vector.timestamp,
                requestID: vector.requestID,
                signature: vector.signature,
                now: at(vector.timestamp, offset: offset)
            )
        }
        try check(300)
        try check(-300)
        #expect(throws: WebhookSignatureError.staleTimestamp(skewSeconds: 301)) { try check(301) }
        #expect(throws: WebhookSignatureError.staleTimestamp(skewSeconds: -301)) { try check(-301) }
    }

    @Test func missingAndMalformedHeadersSayWhich() throws {
        let verifier = try WebhookVerifier(secrets: ["0123456789abcdef"])
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let good = String(repeating: "a", count: 64)
        #expect(throws: WebhookSignatureError.missingHeader("Webhook-Timestamp")) {
            try verifier.verify(body: [UInt8](), timestamp: nil, requestID: "r", signature: good, now: now)
        }
        #expect(throws: WebhookSignatureError.missingHeader("Webhook-Request-Id")) {
            try verifier.verify(body: [UInt8](), timestamp: "1700000000", requestID: nil, signature: good, now: now)
        }
        #expect(throws: WebhookSignatureError.missingHeader("Webhook-Signature")) {
            try verifier.verify(body: [UInt8](), timestamp: "1700000000", requestID: "r", signature: "", now: now)
        }
        for bad in ["-1700000000", "1700000000.5", "17e8", "", "99999999999999999999", " 1700000000"] where !bad.isEmpty {
            #expect(throws: WebhookSignatureError.malformedTimestamp, "\(bad)") {
                try verifier.verify(body: [UInt8](), timestamp: bad, requestID: "r", signature: good, now: now)
            }
        }
        for bad in ["xyz", String(repeating: "g", count: 64), String(repeating: "a", count: 63), String(repeating: "a", count: 2000)] {
            #expect(throws: WebhookSignatureError.malformedSignature) {
                try verifier.verify(body: [UInt8](), timestamp: "1700000000", requestID: "r", signature: bad, now: now)
            }
        }
    }

    @Test func signatureListsAndPrefixesAreAccepted() throws {
        let vector = try #require(try TestData.signatureVectors().valid.first)
        let verifier = try WebhookVerifier(secrets: [vector.secret])
        for header in ["v1=\(vector.signature)", "\(String(repeating: "0", count: 64)), \(vector.signature)", "sha256=\(vector.signature)"] {
            try verifier.verify(
                body: Array(vector.body.utf8),
                timestamp: vector.timestamp,
                requestID: vector.requestID,
                signature: header,
                now: at(vector.timestamp)
            )
        }
    }

    @Test func secretsOutsideTheDocumentedLengthAreRefused() {
        #expect(throws: WebhookSecretError.self) { try WebhookVerifier(secrets: ["short"]) }
        #expect(throws: WebhookSecretError.self) { try WebhookVerifier(secrets: [String(repeating: "x", count: 129)]) }
        #expect(throws: WebhookSecretError.self) { try WebhookVerifier(secrets: []) }
        #expect(throws: Never.self) { try WebhookVerifier(secrets: [String(repeating: "x", count: 16), String(repeating: "y", count: 128)]) }
    }

    @Test func errorsNeverContainTheSecret() throws {
        let secret = "super-secret-value-123"
        let verifier = try WebhookVerifier(secrets: [secret])
        do {
            try verifier.verify(
                body: [UInt8](),
                timestamp: "1700000000",
                requestID: "r",
                signature: String(repeating: "a", count: 64),
                now: Date(timeIntervalSince1970: 1_700_000_000)
            )
            Issue.record("expected a mismatch")
        } catch {
            #expect(!String(describing: error).contains(secret))
        }
        #expect(throws: WebhookSecretError.self) {
            do { _ = try WebhookVerifier(secrets: ["tiny-secret"]) } catch {
                #expect(!String(describing: error).contains("tiny-secret"))
                throw error
            }
        }
    }
}
