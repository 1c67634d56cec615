import BookWatchClocks
import BookWatchService
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import OcrolusAPI
import Testing

/// `--admin-port`: the public listener serves webhooks only; the admin listener the rest; the
/// database's own error is echoed only on the admin listener.
@Suite struct AdminListenerTests {
    struct DiskFull: Error, CustomStringConvertible {
        var description: String { "disk I/O error at /var/lib/bookwatch/db.sqlite (user bookwatch)" }
    }

    static let uuid = "2f4a7c1e-9d3b-4e8f-a6c5-1b2d3e4f5a6b"

    @Test func thePublicListenerServesOnlyWebhooks() async throws {
        let h = try IngressHarness()
        let app = Application(router: BookWatchRoutes.publicRouter(ingress: h.ingress), services: [h.writer])
        try await app.test(.router) { client in
            let body = #"{"event_name":"book.verified","book_uuid":"\#(Self.uuid)","book_pk":1}"#
            let delivered = try await client.execute(
                uri: "/webhooks/ocrolus",
                method: .post,
                headers: h.signedHeaders(body),
                body: ByteBuffer(string: body)
            )
            #expect(delivered.status == .ok)
            for path in ["/metrics", "/readyz", "/healthz", "/books/\(Self.uuid)"] {
                #expect(try await client.execute(uri: path, method: .get).status == .notFound, "\(path)")
            }
        }
    }

    @Test func theAdminListenerServesTheRestAndListsSecretFingerprints() async throws {
        let h = try IngressHarness()
        let health = ServiceHealth(startedAt: h.clock.now(), webhookSecretFingerprints: [WebhookVerifier.fingerprint(IngressHarness.secret)])
        let app = Application(router: BookWatchRoutes.adminRouter(store: h.store, health: health, metrics: h.metrics, clock: h.clock))
        try await app.test(.router) { client in
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .ok)
            #expect(String(buffer: metrics.body).contains("bookwatch_ready"))
            #expect(try await client.execute(uri: "/books/\(Self.uuid)", method: .get).status == .notFound)
            let ready = try await client.execute(uri: "/readyz", method: .get)
            #expect(ready.status == .ok)
            #expect(ready.json["webhook_secrets"] == WebhookVerifier.fingerprint(IngressHarness.secret))
            #expect(!String(buffer: ready.body).contains(IngressHarness.secret))
            #expect(try await client.execute(uri: "/webhooks/ocrolus", method: .post, body: ByteBuffer(string: "{}")).status == .notFound)

            health.databaseFailed(DiskFull())
            let failing = try await client.execute(uri: "/readyz", method: .get)
            #expect(failing.status == .serviceUnavailable)
            #expect(failing.json["database_error"] == DiskFull().description)
        }
    }

    @Test func oneListenerSaysTheDatabaseIsUnwritableButNotWhy() async throws {
        let h = try IngressHarness()
        try await h.application().test(.router) { client in
            h.health.databaseFailed(DiskFull())
            let ready = try await client.execute(uri: "/readyz", method: .get)
            #expect(ready.status == .serviceUnavailable)
            #expect(ready.json["database"] == "unwritable")
            #expect(ready.json["database_error"] == nil)
            #expect(!String(buffer: ready.body).contains("/var/lib"))
        }
    }
}
