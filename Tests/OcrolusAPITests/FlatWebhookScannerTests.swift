import BookWatchCore
import Foundation
import Testing

@testable import OcrolusAPI

/// The fast reading of webhook bodies is `JSONDecoder`'s reading or none: whatever it accepts, it
/// reads exactly as `JSONDecoder` does, and it accepts nothing `JSONDecoder` refuses.
@Suite struct FlatWebhookScannerTests {
    /// Every body of the fuzz corpus and the payload samples.
    static func bodies() throws -> [[UInt8]] {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/corpus").standardized
        let files = try FileManager.default.contentsOfDirectory(at: corpus, includingPropertiesForKeys: nil)
        let payloads = try FileManager.default.contentsOfDirectory(
            at: try TestData.root.appendingPathComponent("payloads"),
            includingPropertiesForKeys: nil
        )
        return try (files + payloads).filter { $0.pathExtension != "md" }.map { Array(try Data(contentsOf: $0)) }
    }

    /// Bodies at the edges of what the fast reading takes.
    static let edges: [String] = [
        #"{}"#, #" { } "#, #"{"book_pk":1}"#, #"{"book_pk":"12"}"#, #"{"book_pk":"+12"}"#, #"{"book_pk":" 12"}"#,
        #"{"book_pk":1.0}"#, #"{"book_pk":1e2}"#, #"{"book_pk":-0}"#, #"{"book_pk":01}"#, #"{"book_pk":99999999999999999999}"#,
        #"{"book_pk":true}"#, #"{"book_pk":null}"#, #"{"book_pk":"x"}"#, #"{"book_pk":1,"book_pk":2}"#,
        #"{"event_name":"a\"b","book_pk":1}"#, #"{"event_name":"é","book_pk":1}"#, #"{"event_name":1,"book_pk":1}"#,
        #"{"event_name":null,"book_pk":1}"#, #"{"book_name":7,"book_pk":1}"#, #"{"book_name":null,"book_pk":1}"#,
        #"{"book_name":[1],"book_pk":1}"#, #"{"book_name":{"a":1},"book_pk":1}"#, #"{"book_name":"n","book_pk":1}"#,
        #"{"extra":{"nested":[1,2]},"book_pk":1}"#, #"{"extra":[],"book_pk":1}"#, #"{"extra":1.5e-3,"book_pk":1}"#,
        #"{"extra":1.,"book_pk":1}"#, #"{"extra":-,"book_pk":1}"#, #"{"extra":tru,"book_pk":1}"#, #"{"book_pk":1,}"#,
        #"{"book_pk":1}x"#, #"{"book_pk":1}{}"#, #"["book_pk"]"#, #""book_pk""#, "", "{", #"{"book_pk""#, #"{"book_pk":"#,
        #"{"uploaded_docs":null,"book_pk":1}"#, #"{"uploaded_docs":[{"pk":1,"status":"COMPLETED"}],"book_pk":1}"#,
        "{\"book_pk\":1,\"event_name\":\"a\tb\"}", "\u{FEFF}{\"book_pk\":1}", "{\"book_pk\":1}\n",
        #"{"status":"VERIFYING","uuid":"09c52985-2f05-4022-a738-9277cc335c7e","doc_uuid":"d","uploaded_doc_uuid":"u","uploaded_doc_pk":"5"}"#,
    ]

    /// Bytes flipped, dropped and doubled at seeded places in every body: the same agreement.
    static func mutations(of bodies: [[UInt8]], count: Int) -> [[UInt8]] {
        var random = SeededRandom(seed: 18)
        let alphabet = Array(#"{}[]":,.-+eE0123456789 tfnul\"#.utf8) + [0x00, 0x0A, 0x80, 0xC3, 0xFF]
        return (0..<count).map { _ in
            var body = bodies[Int(random.next() % UInt64(bodies.count))]
            for _ in 0...Int(random.next() % 3) where !body.isEmpty {
                let at = Int(random.next() % UInt64(body.count))
                switch random.next() % 3 {
                case 0: body[at] = alphabet[Int(random.next() % UInt64(alphabet.count))]
                case 1: body.remove(at: at)
                default: body.insert(body[at], at: at)
                }
            }
            return body
        }
    }

    static func agree(_ body: [UInt8]) -> String? {
        let slow = try? JSONDecoder().decode(RawWebhook.self, from: Data(body))
        guard let fast = FlatWebhookScanner.scan(body) else { return nil }
        if slow == fast { return nil }
        return "\(String(decoding: body, as: UTF8.self)): fast \(fast), JSONDecoder \(slow.map { "\($0)" } ?? "refused")"
    }

    @Test func everyBodyItReadsItReadsAsJSONDecoderDoes() throws {
        let bodies = try Self.bodies() + Self.edges.map { Array($0.utf8) }
        let all = bodies + Self.mutations(of: bodies, count: 20_000)
        let disagreements = all.compactMap(Self.agree)
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
        // The fast reading is really taken for ordinary deliveries.
        let ordinary = try TestData.payload("webhook-org-document-verification-succeeded.json")
        #expect(FlatWebhookScanner.scan(ordinary) != nil)
        #expect(all.filter { FlatWebhookScanner.scan($0) != nil }.count > 500)  // 928 of 20,2xx
    }

    /// A body with more keys than a delivery has is left to `JSONDecoder`, which reads it the same
    /// (the fast reading's duplicate check is quadratic in the keys: a body of 130k keys would hold
    /// a core for a minute).
    @Test func aBodyWithManyKeysIsLeftToJSONDecoder() throws {
        func body(keys: Int) -> [UInt8] {
            Array(("{" + (0..<keys).map { #""k\#($0)":0,"# }.joined() + #""book_pk":7}"#).utf8)
        }
        let limit = FlatWebhookScanner.Cursor.maximumKeys
        #expect(FlatWebhookScanner.scan(body(keys: limit - 1)) != nil)
        #expect(FlatWebhookScanner.scan(body(keys: limit)) == nil)
        let many = body(keys: 20_000)
        #expect(FlatWebhookScanner.scan(many) == nil)
        #expect(try DecodedWebhook.decode(many).bookPK == 7)
    }

    /// What the fast reading leaves to `JSONDecoder` is still refused with its reasons.
    @Test(arguments: [
        (#"{"book_pk":true}"#, "book_pk has the wrong type"), (#"{"event_name":1,"book_pk":1}"#, "event_name has the wrong type"),
        (#"{"book_pk":1}x"#, "body is not valid JSON"), (#"{"book_pk":"x"}"#, "book_pk has the wrong type"),
    ])
    func refusalsKeepTheirReasons(_ body: String, _ reason: String) {
        #expect(throws: WebhookPayloadError(reason: reason)) { try DecodedWebhook.decode(Array(body.utf8)) }
    }
}
