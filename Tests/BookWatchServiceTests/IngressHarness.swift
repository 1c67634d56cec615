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
import NIOCore
import OcrolusAPI

/// A logger that stays quiet in tests.
let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}()

/// A store, an inbox writer and the routes, on a temp-dir database and a manual clock.
struct IngressHarness {
    /// A watcher on this harness's store and health, quiet, with the default configuration.
    func watcher(client: any OcrolusAPIClient, clock: any WallClock) -> Watcher {
        Watcher(store: store, client: client, clock: clock, configuration: WatcherConfiguration(), health: health, logger: quietLogger)
    }

    static let secret = "whsec-test-0123456789abcdef"
    let directory: String
    let store: SQLiteBookStore
    let health: ServiceHealth
    let writer: InboxWriter
    let clock: ManualClock
    let ingress: WebhookIngress
    let metrics = BookWatchMetrics()

    init(
        directory: String? = nil,
        secrets: [String] = [IngressHarness.secret],
        access: WebhookAccessPolicy = .init(),
        bodyLimit: Int = 1 << 20,
        now: Date = Date(timeIntervalSince1970: 1_774_015_331),
        logger: Logger = quietLogger
    ) throws {
        let dir = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-ingress-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        self.directory = dir
        store = try SQLiteBookStore(path: dir + "/db.sqlite", busyTimeout: 1)
        clock = ManualClock(start: now)
        health = ServiceHealth(startedAt: now)
        writer = InboxWriter(store: store, health: health, logger: logger)
        ingress = WebhookIngress(
            bodyLimit: bodyLimit,
            access: access,
            verifier: secrets.isEmpty ? nil : try WebhookVerifier(secrets: secrets),
            writer: writer,
            health: health,
            clock: clock,
            logger: logger,
            observe: { [metrics] outcome, seconds in metrics.webhookAnswered(outcome, seconds: seconds) }
        )
    }

    func application(
        idleTimeout: TimeAmount = BookWatchRoutes.idleTimeout,
        requestDeadline: TimeAmount = BookWatchRoutes.requestDeadline
    ) -> some ApplicationProtocol {
        Application(
            router: BookWatchRoutes.router(ingress: ingress, store: store, health: health, metrics: metrics),
            server: BookWatchRoutes.httpServer(idleTimeout: idleTimeout, requestDeadline: requestDeadline),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            services: [writer]
        )
    }

    /// `body` posted to the webhook route, signed as Ocrolus would sign it with `requestID`.
    func deliver(_ body: String, requestID: String, through client: some TestClientProtocol) async throws -> TestResponse {
        try await client.execute(
            uri: "/webhooks/ocrolus",
            method: .post,
            headers: signedHeaders(body, requestID: requestID),
            body: ByteBuffer(string: body)
        )
    }

    /// Headers Ocrolus would send for `body`, signed with `secret` at the clock's time.
    func signedHeaders(
        _ body: String,
        requestID: String = UUID().uuidString,
        secret: String = IngressHarness.secret,
        timestamp: Date? = nil
    ) -> HTTPFields {
        let stamp = String(Int((timestamp ?? clock.now()).timeIntervalSince1970))
        var fields: HTTPFields = [.contentType: "application/json"]
        fields[HTTPField.Name("Webhook-Timestamp")!] = stamp
        fields[HTTPField.Name("Webhook-Request-Id")!] = requestID
        fields[HTTPField.Name("Webhook-Signature")!] = WebhookVerifier.sign(
            body: Array(body.utf8),
            timestamp: stamp,
            requestID: requestID,
            secret: secret
        )
        return fields
    }

    static let documentEvent =
        #"{"event_name":"document.verification_succeeded","book_pk":71400892,"book_uuid":"09c52985-2f05-4022-a738-9277cc335c7e","uploaded_doc_pk":133257741}"#
}

extension TestResponse {
    var json: [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(body.readableBytesView))) ?? [:]
    }
}
