import Foundation

/// The payload samples and signature vectors of Ocrolus's documentation, kept in this target's resources (`Fixtures/`).
enum TestData {
    static var root: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
                throw CocoaError(.fileNoSuchFile)
            }
            return url
        }
    }

    static func payload(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: root.appendingPathComponent("payloads/\(name)")))
    }

    struct SignatureVector: Decodable, Sendable, CustomStringConvertible {
        var why: String?
        var secret: String
        var timestamp: String
        var requestID: String
        var body: String
        var signature: String
        enum CodingKeys: String, CodingKey {
            case why, secret, timestamp, body, signature
            case requestID = "request_id"
        }
        var description: String { why ?? "vector \(requestID)" }
    }

    struct SignatureVectors: Decodable {
        var valid: [SignatureVector]
        var invalid: [SignatureVector]
        var validVariants: [SignatureVector]
        enum CodingKeys: String, CodingKey {
            case valid, invalid
            case validVariants = "valid_variants"
        }
    }

    static func signatureVectors() throws -> SignatureVectors {
        try JSONDecoder().decode(SignatureVectors.self, from: Data(contentsOf: root.appendingPathComponent("webhook-signatures.json")))
    }
}
