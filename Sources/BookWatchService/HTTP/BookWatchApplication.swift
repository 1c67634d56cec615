import BookWatchClocks
import BookWatchCore
import BookWatchStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import OcrolusAPI

/// The HTTP side of `serve`: webhooks, health, readiness and one Book's JSON.
///
/// One listener serves everything (`router`), or, with `--admin-port`, the public listener serves
/// only `POST /webhooks/ocrolus` (`publicRouter`) and the admin listener the rest (`adminRouter`).
public enum BookWatchRoutes {
    /// Hummingbird's idle timeout: a connection whose request head has not arrived this long
    /// after it opened (or after its last response) is closed. It restarts at every decoded part,
    /// so a body trickled a byte at a time would outlive it: `requestDeadline` bounds that.
    public static let idleTimeout: TimeAmount = .seconds(30)
    /// How long after its head a request must be read in full before the connection is closed
    /// (`RequestDeadlineHandler`), whatever arrives meanwhile; this also bounds the body
    /// Hummingbird drains after an early refusal (403, 413). Ocrolus's documented delivery
    /// timeout is 5-10 s, so its deliveries never come near it; a request read in full and
    /// waiting on its group commit is never cut.
    public static let requestDeadline: TimeAmount = .seconds(30)

    /// The HTTP/1.1 server both listeners run: Hummingbird's, with `idleTimeout` and a
    /// `RequestDeadlineHandler` per connection.
    public static func httpServer(idleTimeout: TimeAmount = Self.idleTimeout, requestDeadline: TimeAmount = Self.requestDeadline) -> HTTPServerBuilder
    {
        .http1(
            configuration: HTTP1Channel.Configuration(
                additionalChannelHandlers: [RequestDeadlineHandler(deadline: requestDeadline)],
                idleTimeout: idleTimeout
            )
        )
    }

    /// Every route on one listener (no `--admin-port`). `/readyz` here is reachable wherever
    /// webhooks are, so it says that the database is unwritable but not why.
    ///
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
        let router = publicRouter(ingress: ingress, bareBenchmarkRoute: bareBenchmarkRoute)
        addAdminRoutes(to: router, store: store, health: health, metrics: metrics, clock: ingress.clock, detailedReadiness: false)
        return router
    }

    /// The public listener with `--admin-port`: `POST /webhooks/ocrolus` only, 404 elsewhere.
    public static func publicRouter(ingress: WebhookIngress, bareBenchmarkRoute: Bool = false) -> Router<IngressRequestContext> {
        let router = Router(context: IngressRequestContext.self)
        // Records into whatever swift-metrics backend the process bootstrapped (serve: the
        // same registry as `metrics`); a no-op otherwise.
        router.add(middleware: MetricsMiddleware())
        router.post("/webhooks/ocrolus") { request, context in await ingress.handle(request, context: context) }
        if bareBenchmarkRoute {
            router.post("/bench/bare") { request, _ in
                var request = request
                _ = try await request.collectBody(upTo: ingress.admission.bodyLimit)
                return WebhookIngress.json(.ok, ["status": "accepted"])
            }
        }
        return router
    }

    /// The admin listener (`--admin-port`): `/metrics`, `/books/{uuid}`, `/healthz`, `/readyz`
    /// (with the database's error when it is unwritable).
    public static func adminRouter(
        store: any BookRegistry,
        health: ServiceHealth,
        metrics: BookWatchMetrics,
        clock: any WallClock
    ) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: MetricsMiddleware())
        addAdminRoutes(to: router, store: store, health: health, metrics: metrics, clock: clock, detailedReadiness: true)
        return router
    }

    private static func addAdminRoutes<Context: RequestContext>(
        to router: Router<Context>,
        store: any BookRegistry,
        health: ServiceHealth,
        metrics: BookWatchMetrics,
        clock: any WallClock,
        detailedReadiness: Bool
    ) {
        router.get("/metrics") { _, _ in await scrape(metrics: metrics, store: store, health: health, now: clock.now()) }
        router.get("/healthz") { _, _ in WebhookIngress.json(.ok, ["status": "ok"]) }
        router.get("/readyz") { _, _ in readiness(health, detailed: detailedReadiness) }
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

    /// The readiness answer. `detailed` (the admin listener) adds the database's own error; the
    /// public listener never echoes it (it can name hosts, paths and users). Both list the
    /// fingerprints of the accepted webhook secrets (`webhook_secrets`, comma-separated), which
    /// `bookwatch webhooks rotate-secret` reads.
    static func readiness(_ health: ServiceHealth, detailed: Bool) -> Response {
        let snapshot = health.snapshot
        var detail: [String: String] = [
            "status": snapshot.databaseWritable ? "ready" : "not ready",
            "database": snapshot.databaseWritable ? "writable" : "unwritable",
        ]
        if detailed, let error = snapshot.databaseError { detail["database_error"] = error }
        detail["webhook_secrets"] = health.webhookSecretFingerprints.joined(separator: ",")
        detail["last_webhook_at"] = snapshot.lastWebhookAt.map(BookStatusEntry.rfc3339) ?? "never"
        detail["webhooks"] = health.webhooksSilent ? "silent: polling takes over" : "arriving"
        return WebhookIngress.json(snapshot.databaseWritable ? .ok : .serviceUnavailable, detail)
    }
}
