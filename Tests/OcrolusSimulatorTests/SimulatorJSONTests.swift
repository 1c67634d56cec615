import BookWatchCore
import Foundation
import Testing

@testable import OcrolusSimulator

/// The simulator's own JSON writer writes what `JSONSerialization` (sorted keys, slashes not
/// escaped) writes, byte for byte, and leaves to it whatever it cannot write exactly.
@Suite struct SimulatorJSONTests {
    static let keys = ["status", "book_uuid", "pk", "documents", "uploaded_docs", "a", "b_", "_x", "message", "response", "txn_pk"]
    static let texts = ["", "OK", "VERIFYING", #"a "quoted" \ one"#, "http://simulator/oauth/token", "09c52985-2f05-4022-a738-9277cc335c7e", "x y"]

    static func value(_ random: inout SeededRandom, depth: Int) -> Any {
        switch random.next() % (depth > 3 ? 4 : 6) {
        case 0: return texts[Int(random.next() % UInt64(texts.count))]
        case 1: return Int(truncatingIfNeeded: random.next() % 2_000_000) - 1_000_000
        case 2: return random.next() % 2 == 0
        case 3: return NSNull()
        case 4: return (0..<Int(random.next() % 4)).map { _ in value(&random, depth: depth + 1) }
        default: return object(&random, depth: depth + 1)
        }
    }

    static func object(_ random: inout SeededRandom, depth: Int) -> [String: Any] {
        var object: [String: Any] = [:]
        for _ in 0..<Int(random.next() % 6) { object[keys[Int(random.next() % UInt64(keys.count))]] = value(&random, depth: depth) }
        return object
    }

    @Test func itWritesWhatJSONSerializationWrites() throws {
        var random = SeededRandom(seed: 15)
        // Typed containers as the simulator builds them (a page of transactions), then seeded ones.
        let typed: [String: Any] = [
            "response": ["enriched_transactions": [["txn_pk": 1, "amount": "1.05"], ["txn_pk": 2, "generation": 3]] as [[String: Any]]],
            "names": ["a", "b"], "counts": [1, 2],
        ]
        for index in 0..<2_001 {
            let object = index == 0 ? typed : Self.object(&random, depth: 0)
            for escapingSlashes in [false, true] {
                let options: JSONSerialization.WritingOptions = escapingSlashes ? [.sortedKeys] : [.sortedKeys, .withoutEscapingSlashes]
                let expected = Array(try JSONSerialization.data(withJSONObject: object, options: options))
                let written = try #require(SimulatorJSON.encode(object, escapingSlashes: escapingSlashes))
                #expect(written == expected, "\(String(decoding: written, as: UTF8.self)) vs \(String(decoding: expected, as: UTF8.self))")
            }
        }
    }

    /// Keys Foundation orders by its own rules (digits, capitals), text it may escape, and
    /// fractions are left to `JSONSerialization`.
    @Test func whatItCannotWriteExactlyItLeaves() {
        let objects: [[String: Any]] = [["v2": 1, "v10": 2], ["Status": 1], ["name": "é"], ["name": "a\nb"], ["rate": 1.5], ["list": [["A": 1]]]]
        for object in objects { #expect(SimulatorJSON.encode(object) == nil, "\(object)") }
    }
}
