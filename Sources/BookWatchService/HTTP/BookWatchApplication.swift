import BookWatchClocks
import BookWatchCore
import BookWatchStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import OcrolusAPI

/// The HTTP side of `serve`: webhooks, health, readiness and one Book's JSON.
public enum BookWatchRoutes {
    /// - Parameter bareBenchmarkRoute: adds `POST /bench/bare`, which reads the body and answers
    ///   like an accepted webhook without checking or storing anything: the baseline of the ingress
    ///   benchmark (`scripts/bench-ingress.sh`), never for production.
    public static func router(
        ingress: WebhookIngress,
        store: any BookRegistry,
        health: ServiceHealth,
        metrics: BookWatchMetrics = BookWatchMetrics(),
        bareBenchmarkRoute: Bool = false
    ) -> Router<IngressRequestContext> {
        let router = Router(context: IngressRequestContext.self)
        // Records into whatever swift-metrics backend the process bootstrapped (serve: the
        // same registry as `metrics`); a no-op otherwise.
        router.add(middleware: MetricsMiddleware())
        router.get("/metrics") { _, _ in await scrape(metrics: metrics, store: store, health: health, now: ingress.clock.now()) }
        router.post("/webhooks/ocrolus") { request, context in await ingress.handle(request, context: context) }
        if bareBenchmarkRoute {
            router.post("/bench/bare") { request, _ in
                var request = request
                _ = try await request.collectBody(upTo: ingress.admission.bodyLimit)
                return WebhookIngress.json(.ok, ["status": "accepted"])
            }
        }
        router.get("/healthz") { _, _ in WebhookIngress.json(.ok, ["status": "ok"]) }
        router.get("/readyz") { _, _ in readiness(health) }
        router.get("/books/:uuid") { _, context in
            guard let text = context.parameters.get("uuid"), let uuid = BookUUID(text) else {
                return WebhookIngress.json(.badRequest, ["status": "error", "error": "not a uuid"])
            }
            do {
                guard let record = try await store.book(uuid) else {
                    return WebhookIngress.json(.notFound, ["status": "error", "error": "book \(uuid) is not tracked"])
                }
                let data = try BookStatusEntry(record).jsonData(pretty: false)
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
                )
            } catch {
                return WebhookIngress.json(.serviceUnavailable, ["status": "error", "error": "database unavailable"])
            }
        }
        return router
    }

    /// Refreshes the gauges that describe the database and the service, then renders everything.
    /// A database that cannot be read leaves the gauges at their last values (and `bookwatch_ready`
    /// tells why); the scrape itself still answers.
    static func scrape(metrics: BookWatchMetrics, store: any BookRegistry, health: ServiceHealth, now: Date) async -> Response {
        if let gauges = try? await store.gauges(overdueBefore: now.addingTimeInterval(-BookWatchMetrics.overdueAfter)) {
            metrics.update(gauges)
        }
        metrics.update(health: health.snapshot, startedAt: health.startedAt, now: now)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.exposition()))
        )
    }

    static func readiness(_ health: ServiceHealth) -> Response {
        let snapshot = health.snapshot
        var detail: [String: String] = [
            "status": snapshot.databaseWritable ? "ready" : "not ready",
            "database": snapshot.databaseWritable ? "writable" : "unwritable",
        ]
        if let error = snapshot.databaseError { detail["database_error"] = error }
        detail["last_webhook_at"] = snapshot.lastWebhookAt.map(BookStatusEntry.rfc3339) ?? "never"
        detail["webhooks"] = health.webhooksSilent ? "silent: polling takes over" : "arriving"
        return WebhookIngress.json(snapshot.databaseWritable ? .ok : .serviceUnavailable, detail)
    }
}
