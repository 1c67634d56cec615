import Benchmark
import BookWatchCore
import Foundation
import OcrolusAPI

// Inputs built once, outside the measured closures.
let book = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!
let start = Date(timeIntervalSince1970: 1_774_000_000)
let documents = (1...10).map { DocumentSnapshot(ref: DocumentRef(pk: $0), status: $0 <= 7 ? .completed : .processing) }
let processing = BookInput.snapshot(.present(pk: 7, status: .verifying, documents: documents))
let finished = BookInput.snapshot(
    .present(
        pk: 7,
        status: .verified,
        documents: documents.map {
            DocumentSnapshot(ref: $0.ref, status: .completed)
        }
    )
)
let hint = BookInput.webhook(WebhookHint(event: .documentVerified, document: DocumentRef(pk: 3)))
let body = Array(
    #"{"event_name":"document.verification_succeeded","severity":"LOW","notification_type":"STATUS","notification_reason":"Document verification succeeded","book_pk":71400892,"book_uuid":"09c52985-2f05-4022-a738-9277cc335c7e","doc_uuid":"5c12b7b2-8f0e-4c4e-9b51-2a8c1f3f9d10","uploaded_doc_pk":133257741,"uploaded_doc_uuid":"5c12b7b2-8f0e-4c4e-9b51-2a8c1f3f9d10"}"#
        .utf8
)
let secret = "whsec-bench-0123456789abcdef"
let verifier = try! WebhookVerifier(secrets: [secret])  // a constant, valid secret
let timestamp = String(Int(start.timeIntervalSince1970))
let signature = WebhookVerifier.sign(body: body, timestamp: timestamp, requestID: "req-1", secret: secret)

/// The hot paths, each beside the baseline of the same run (`baseline: ...`): compare ratios, not
/// absolute figures, on a shared machine. Run: `cd Benchmarks && swift package benchmark`.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput], maxDuration: .seconds(2), maxIterations: 1_000_000)

    Benchmark("machine: processing snapshot (10 documents)") { benchmark in
        for _ in benchmark.scaledIterations {
            var machine = BookMachine(uuid: book)
            blackHole(machine.apply(processing, at: start))
        }
    }

    Benchmark("machine: snapshot, hint, finished snapshot, analytics stored") { benchmark in
        for _ in benchmark.scaledIterations {
            var machine = BookMachine(uuid: book)
            blackHole(machine.apply(processing, at: start))
            blackHole(machine.apply(hint, at: start))
            blackHole(machine.apply(finished, at: start))
            blackHole(machine.apply(.analytics(generation: 1, .stored), at: start))
        }
    }

    Benchmark("webhook: decode payload") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? DecodedWebhook.decode(body)) }
    }

    Benchmark("webhook: verify signature (HMAC-SHA256)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? verifier.verify(body: body, timestamp: timestamp, requestID: "req-1", signature: signature, now: start))
        }
    }

    Benchmark("webhook: verify + decode") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? verifier.verify(body: body, timestamp: timestamp, requestID: "req-1", signature: signature, now: start))
            blackHole(try? DecodedWebhook.decode(body))
        }
    }

    // Baseline: Foundation's untyped JSON parse of the same body, the least any decoder does.
    Benchmark("baseline: JSONSerialization of the payload") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? JSONSerialization.jsonObject(with: Data(body))) }
    }
}
