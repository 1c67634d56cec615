import BookWatchClocks
import BookWatchCore
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Metrics
import NIOCore
import OcrolusAPI
import Prometheus
import Testing

/// `GET /metrics` tells the truth: traffic is driven through the routes and read back.
@Suite struct MetricsTests {
    let body = IngressHarness.documentEvent

    func scrape(_ client: some TestClientProtocol) async throws -> (text: String, samples: [String: Double]) {
        let answer = try await client.execute(uri: "/metrics", method: .get)
        #expect(answer.status == .ok)
        #expect(answer.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = String(buffer: answer.body)
        return (text, PrometheusSamples.parse(text))
    }

    @Test func webhookOutcomesAckTimesAndGaugesAfterTraffic() async throws {
        let h = try IngressHarness()
        let other = BookUUID("b79fb14b-1d2a-4e8e-8a3c-6f0d2c9e7a41")!
        _ = try await h.store.apply(.command(.track(.operator)), to: other, at: h.clock.now(), options: .init())
        // Three documents: one finished, the second `second`, one rejected.
        @Sendable func answer(second: DocumentStatus) async throws {
            let documents = [DocumentStatus.completed, second, .rejected].enumerated().map { index, status in
                DocumentSnapshot(ref: DocumentRef(pk: index + 1), status: status)
            }
            _ = try await h.store.apply(
                .snapshot(.present(pk: 9, status: .verifying, documents: documents)),
                to: other,
                at: h.clock.now(),
                options: .init()
            )
        }
        try await answer(second: .processing)
        // The documents gauge is counted in the background, not at the scrape.
        let documents = DocumentGaugeRefresher(store: h.store, metrics: h.metrics, clock: h.clock, logger: Logger(label: "test"))
        await documents.refresh()
        try await h.application().test(.router) { client in
            let headers = h.signedHeaders(body, requestID: "req-1")
            for _ in 0..<2 {
                _ = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: headers, body: ByteBuffer(string: body))
            }
            var forged = h.signedHeaders(body, requestID: "req-2")
            forged[HTTPField.Name("Webhook-Signature")!] = "v1=00"
            _ = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: forged, body: ByteBuffer(string: body))
            _ = try await client.execute(
                uri: "/webhooks/ocrolus",
                method: .post,
                headers: h.signedHeaders("nope", requestID: "req-3"),
                body: ByteBuffer(string: "nope")
            )
            h.clock.advance(by: 42)
            let (_, samples) = try await scrape(client)
            #expect(samples[#"bookwatch_webhooks_received_total{outcome="accepted"}"#] == 1)
            #expect(samples[#"bookwatch_webhooks_received_total{outcome="duplicate"}"#] == 1)
            #expect(samples[#"bookwatch_webhooks_received_total{outcome="bad_signature"}"#] == 1)
            #expect(samples[#"bookwatch_webhooks_received_total{outcome="malformed"}"#] == 1)
            #expect(samples[#"bookwatch_webhooks_received_total{outcome="too_large"}"#] == 0)
            #expect(samples["bookwatch_webhook_ack_seconds_count"] == 4)
            #expect(samples["bookwatch_inbox_pending"] == 1)
            #expect(samples[#"bookwatch_books{state="processing"}"#] == 1)
            #expect(samples[#"bookwatch_books{state="complete"}"#] == 0)
            #expect(samples[#"bookwatch_documents{state="succeeded"}"#] == 1)
            #expect(samples[#"bookwatch_documents{state="in_progress"}"#] == 1)
            #expect(samples[#"bookwatch_documents{state="failed"}"#] == 1)
            #expect(samples["bookwatch_webhook_silence_seconds"] == 42)
            #expect(samples["bookwatch_ready"] == 1)
            #expect(samples[#"bookwatch_build_info{version="\#(BookWatchVersion.current)"}"#] == 1)
            // The store's next poll for `other` is 60 s+ away: nothing overdue yet; then it is.
            #expect(samples["bookwatch_polls_overdue"] == 0)
            // A Document finishing shows at the next refresh, not at the next scrape.
            try await answer(second: .completed)
            #expect(try await scrape(client).samples[#"bookwatch_documents{state="succeeded"}"#] == 1)
            await documents.refresh()
            #expect(try await scrape(client).samples[#"bookwatch_documents{state="succeeded"}"#] == 2)
            h.clock.advance(by: 3 * 3600)
            let (_, later) = try await scrape(client)
            #expect(later["bookwatch_polls_overdue"] == 1)
            #expect(abs((later["bookwatch_webhook_silence_seconds"] ?? 0) - (42 + 3 * 3600)) < 0.01)
        }
    }

    @Test func anUnwritableDatabaseShowsAsNotReady() async throws {
        let h = try IngressHarness()
        h.health.databaseFailed(StoreError(.readOnly, subject: "test", detail: "read-only"))
        try await h.application().test(.router) { client in
            let samples = try await scrape(client).samples
            #expect(samples["bookwatch_ready"] == 0)
        }
    }

    @Test func everyFamilyHasHelpAndTypeAndSnakeCaseNames() async throws {
        let h = try IngressHarness()
        try await h.application().test(.router) { client in
            let (text, _) = try await scrape(client)
            let families = Set(text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
            let helped = Set(text.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
            // Every family of the contract but the two Ocrolus request ones, which appear with their first call.
            #expect(families.count == 19)
            #expect(families == helped)
            for family in families {
                #expect(family.hasPrefix("bookwatch_") && family.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" })
            }
            for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") && line.hasSuffix(" counter") {
                #expect(line.split(separator: " ")[2].hasSuffix("_total"), "\(line)")
            }
        }
    }

    @Test func ocrolusCallsAreCountedByEndpointAndCodeWithBoundedLabels() {
        let metrics = BookWatchMetrics()
        metrics.ocrolusRequest(RequestRecord(endpoint: "book_status", status: 200, seconds: 0.2, limiterWaitSeconds: 1.5))
        metrics.ocrolusRequest(RequestRecord(endpoint: "book_status", status: 429, seconds: 0.1, limiterWaitSeconds: 0))
        metrics.ocrolusRequest(RequestRecord(endpoint: "analytics/summary", status: 200, seconds: 0.3, limiterWaitSeconds: 0))
        metrics.ocrolusRequest(RequestRecord(endpoint: "/v1/something/\(UUID())", status: 500, seconds: 0.3, limiterWaitSeconds: 0))
        metrics.ocrolusRequest(RequestRecord(endpoint: "token", status: 0, seconds: 0.1, limiterWaitSeconds: 0, cancelled: true))
        metrics.ocrolusRequest(RequestRecord(endpoint: "book_status", status: 0, seconds: 0.1, limiterWaitSeconds: 0))
        let samples = PrometheusSamples.parse(metrics.registry.emitToString())
        // A shutdown's cut-short request is not an error code; a request with no answer is.
        #expect(samples[#"bookwatch_ocrolus_requests_total{endpoint="token",code="cancelled"}"#] == 1)
        #expect(samples[#"bookwatch_ocrolus_requests_total{endpoint="book_status",code="0"}"#] == 1)
        #expect(samples[#"bookwatch_ocrolus_requests_total{endpoint="book_status",code="200"}"#] == 1)
        #expect(samples[#"bookwatch_ocrolus_requests_total{endpoint="book_status",code="429"}"#] == 1)
        #expect(samples[#"bookwatch_ocrolus_requests_total{endpoint="analytics_summary",code="200"}"#] == 1)
        #expect(samples[#"bookwatch_ocrolus_requests_total{endpoint="other",code="500"}"#] == 1)
        #expect(samples[#"bookwatch_ocrolus_request_seconds_count{endpoint="book_status"}"#] == 3)
        #expect(samples["bookwatch_rate_limiter_wait_seconds_count"] == 6)
        #expect(samples["bookwatch_rate_limiter_wait_seconds_sum"] == 1.5)
        #expect(PrometheusSamples.sum(samples, "bookwatch_ocrolus_requests_total", matching: [#"code="200""#]) == 2)
    }

    /// Hummingbird's middleware records through swift-metrics; `serve` bootstraps this factory.
    /// Driven here through swift-metrics' own types with the factory passed explicitly (the global
    /// bootstrap may run once per process).
    @Test func hummingbirdsHTTPMetricsGetPrometheusNamesAndHelp() {
        let registry = PrometheusCollectorRegistry()
        let factory = HTTPMetricsFactory(registry: registry)
        let dimensions = [("http.route", "/metrics"), ("http.request.method", "GET"), ("http.response.status_code", "200")]
        Counter(label: "hb.requests", dimensions: dimensions, factory: factory).increment()
        Metrics.Timer(label: "http.server.request.duration", dimensions: dimensions, factory: factory).recordNanoseconds(2_000_000)
        Meter(label: "http.server.active_requests", dimensions: [("http.request.method", "GET")], factory: factory).increment()
        Counter(label: "some.library.events", factory: factory).increment()
        let text = registry.emitToString()
        let samples = PrometheusSamples.parse(text)
        #expect(samples[#"bookwatch_http_requests_total{route="/metrics",method="GET",status_code="200"}"#] == 1)
        #expect(samples[#"bookwatch_http_request_duration_seconds_count{route="/metrics",method="GET",status_code="200"}"#] == 1)
        #expect(samples[#"bookwatch_http_request_duration_seconds_sum{route="/metrics",method="GET",status_code="200"}"#] == 0.002)
        #expect(samples[#"bookwatch_http_active_requests{method="GET"}"#] == 1)
        #expect(samples["bookwatch_some_library_events_total"] == 1)
        #expect(text.contains("# HELP bookwatch_http_requests_total HTTP requests answered"))
    }
}

/// The documents gauge's pacing: at most 1% of a core, never beyond the ceiling, a failure
/// tried again soon.
@Suite struct DocumentGaugePacingTests {
    @Test func theCountIsPacedByItsCostWithinBounds() throws {
        let h = try IngressHarness()
        let refresher = DocumentGaugeRefresher(store: h.store, metrics: h.metrics, clock: h.clock, logger: Logger(label: "test"))
        #expect(refresher.pause(afterCountTaking: 0.01, succeeded: true) == 60)
        #expect(refresher.pause(afterCountTaking: 1.5, succeeded: true) == 150)
        #expect(refresher.pause(afterCountTaking: 3600, succeeded: true) == 900)
        #expect(refresher.pause(afterCountTaking: 10, succeeded: false) == 60)
    }
}
