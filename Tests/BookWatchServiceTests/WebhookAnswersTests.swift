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
import Synchronization
import Testing

/// Every row of the answers table in architecture.md, through the router.
@Suite struct WebhookAnswersTests {
    let body = IngressHarness.documentEvent

    @Test func validIsStoredAndAcceptedAndADuplicateRequestIDIsNot() async throws {
        let h = try IngressHarness()
        try await h.application().test(.router) { client in
            let headers = h.signedHeaders(body, requestID: "req-1")
            let first = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: headers, body: ByteBuffer(string: body))
            #expect(first.status == .ok)
            #expect(first.json == ["status": "accepted"])
            let again = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: headers, body: ByteBuffer(string: body))
            #expect(again.status == .ok)
            #expect(again.json == ["status": "duplicate"])
        }
        let stored = try await h.store.pendingInbox(limit: 10)
        #expect(stored.count == 1)
        #expect(stored.first?.delivery.requestID == "req-1")
        #expect(stored.first?.delivery.body == Array(body.utf8))
        #expect(stored.first?.delivery.bookUUID == BookUUID("09c52985-2f05-4022-a738-9277cc335c7e"))
        #expect(stored.first?.delivery.authenticated == true, "signed")
    }

    /// A delivery's log lines name its request (and its Book once decoded), whether it is stored
    /// (at debug) or refused.
    @Test func aDeliverysLogLinesNameItsRequestAndBook() async throws {
        let lines = LogLines()
        let logger = Logger(label: "test") { label in
            LineLogHandler(label: label, format: .text, level: .debug, write: { line in lines.value.withLock { $0.append(line) } })
        }
        let h = try IngressHarness(logger: logger)
        try await h.application().test(.router) { client in
            let stored = try await h.deliver(body, requestID: "req-stored", through: client)
            #expect(stored.status == .ok)
            var forged = h.signedHeaders(body, requestID: "req-forged")
            forged[HTTPField.Name("Webhook-Signature")!] = "v1=00"
            let refused = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: forged, body: ByteBuffer(string: body))
            #expect(refused.status != .ok)
        }
        let written = lines.value.withLock { $0 }
        let storedLine = written.first { $0.contains("webhook stored") }
        #expect(storedLine?.contains("request_id=req-stored") == true, "\(written)")
        #expect(storedLine?.contains("book_uuid=09c52985-2f05-4022-a738-9277cc335c7e") == true, "\(written)")
        #expect(written.first { $0.contains("webhook refused") }?.contains("request_id=req-forged") == true, "\(written)")
    }

    final class LogLines: Sendable {
        let value = Mutex<[String]>([])
    }

    /// Only a delivery that passed a check of its origin may stand in for a status call: with no
    /// secret, no Basic credentials and no allowlist, anything could have sent it.
    @Test(arguments: [
        (WebhookAccessPolicy(), false),
        (WebhookAccessPolicy(basicCredentials: "ocrolus:pa55word"), true),
        (WebhookAccessPolicy(allow: [CIDR("127.0.0.0/8")!, CIDR("::1")!]), true),
    ])
    func anUnsignedDeliveryIsAuthenticatedOnlyByBasicCredentialsOrTheAllowlist(access: WebhookAccessPolicy, authenticated: Bool) async throws {
        let h = try IngressHarness(secrets: [], access: access)
        try await h.application().test(.live) { client in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            headers[HTTPField.Name("Webhook-Request-Id")!] = "unsigned"
            headers[.authorization] = "Basic " + Data("ocrolus:pa55word".utf8).base64EncodedString()
            let answer = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: headers, body: ByteBuffer(string: body))
            #expect(answer.status == .ok)
        }
        #expect(try await h.store.pendingInbox(limit: 10).first?.delivery.authenticated == authenticated)
    }

    @Test func unknownEventsAndUnknownBooksAreStored() async throws {
        let h = try IngressHarness()
        let unknown = #"{"event_name":"book.teleported","book_uuid":"11111111-2222-4333-8444-555555555555"}"#
        try await h.application().test(.router) { client in
            let answer = try await client.execute(
                uri: "/webhooks/ocrolus",
                method: .post,
                headers: h.signedHeaders(unknown),
                body: ByteBuffer(string: unknown)
            )
            #expect(answer.status == .ok)
            #expect(answer.json == ["status": "accepted"])
        }
        #expect(try await h.store.inboxCount() == 1)
    }

    @Test(arguments: [
        ("not json", "not valid JSON"),
        (#"{"event_name":"book.verified"}"#, "missing book_uuid and book_pk"),
        (#"{"book_pk":"x1"}"#, "book_pk has the wrong type"),
        (#"{"book_uuid":"nope"}"#, "is not a uuid"),
    ])
    func malformedIs400WithAReason(payload: String, reason: String) async throws {
        let h = try IngressHarness()
        try await h.application().test(.router) { client in
            let answer = try await client.execute(
                uri: "/webhooks/ocrolus",
                method: .post,
                headers: h.signedHeaders(payload),
                body: ByteBuffer(string: payload)
            )
            #expect(answer.status == .badRequest)
            #expect(answer.json["error"]?.contains(reason) == true)
        }
        #expect(try await h.store.inboxCount() == 0)
    }

    @Test func badMissingOrStaleSignaturesAre401() async throws {
        let h = try IngressHarness()
        try await h.application().test(.router) { client in
            var wrong = h.signedHeaders(body, secret: "another-secret-0123456789")
            let bad = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: wrong, body: ByteBuffer(string: body))
            #expect(bad.status == .unauthorized)
            #expect(bad.json["error"] == "Webhook-Signature does not match")
            #expect(!(bad.json["error"] ?? "").contains(IngressHarness.secret))
            wrong = [.contentType: "application/json"]
            let missing = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: wrong, body: ByteBuffer(string: body))
            #expect(missing.status == .unauthorized)
            let stale = h.signedHeaders(body, timestamp: h.clock.now().addingTimeInterval(-301))
            let old = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: stale, body: ByteBuffer(string: body))
            #expect(old.status == .unauthorized)
            #expect(old.json["error"]?.contains("outside the tolerance") == true)
            let future = h.signedHeaders(body, timestamp: h.clock.now().addingTimeInterval(301))
            #expect(
                try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: future, body: ByteBuffer(string: body)).status
                    == .unauthorized
            )
            // A body changed after signing.
            let tampered = try await client.execute(
                uri: "/webhooks/ocrolus",
                method: .post,
                headers: h.signedHeaders(body),
                body: ByteBuffer(string: body.replacingOccurrences(of: "71400892", with: "71400893"))
            )
            #expect(tampered.status == .unauthorized)
        }
        #expect(try await h.store.inboxCount() == 0)
    }

    @Test func everySignatureVectorThroughTheRoute() async throws {
        let url = try #require(Bundle.module.url(forResource: "webhook-signatures", withExtension: "json"))
        let vectors = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        for (group, expected) in [("valid", HTTPResponse.Status.ok), ("valid_variants", .ok), ("invalid", .unauthorized)] {
            for vector in try #require(vectors[group] as? [[String: String]]) {
                let secret = try #require(vector["secret"])
                let stamp = try #require(vector["timestamp"])
                let h = try IngressHarness(secrets: [secret], now: Date(timeIntervalSince1970: try #require(TimeInterval(stamp))))
                var headers: HTTPFields = [.contentType: "application/json"]
                headers[HTTPField.Name("Webhook-Timestamp")!] = stamp
                headers[HTTPField.Name("Webhook-Request-Id")!] = vector["request_id"]
                headers[HTTPField.Name("Webhook-Signature")!] = vector["signature"]
                let fields = headers
                try await h.application().test(.router) { client in
                    let answer = try await client.execute(
                        uri: "/webhooks/ocrolus",
                        method: .post,
                        headers: fields,
                        body: ByteBuffer(string: try #require(vector["body"]))
                    )
                    #expect(answer.status == expected, "\(group): \(vector["why"] ?? vector["request_id"] ?? "")")
                }
            }
        }
    }

    @Test func basicCredentialsAreChecked() async throws {
        let h = try IngressHarness(secrets: [], access: WebhookAccessPolicy(basicCredentials: "ocrolus:s3cret-pass"))
        try await h.application().test(.router) { client in
            var headers: HTTPFields = [.contentType: "application/json"]
            let none = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: headers, body: ByteBuffer(string: body))
            #expect(none.status == .unauthorized)
            #expect(none.headers[.wwwAuthenticate] != nil)
            headers[.authorization] = "Basic " + Data("ocrolus:wrong".utf8).base64EncodedString()
            #expect(
                try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: headers, body: ByteBuffer(string: body)).status
                    == .unauthorized
            )
            headers[.authorization] = "Basic " + Data("ocrolus:s3cret-pass".utf8).base64EncodedString()
            #expect(try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: headers, body: ByteBuffer(string: body)).status == .ok)
        }
    }

    @Test func sourceNotAllowedIs403() async throws {
        let h = try IngressHarness(access: WebhookAccessPolicy(allow: [CIDR("18.205.30.63/32")!]))
        try await h.application().test(.router) { client in
            let answer = try await client.execute(
                uri: "/webhooks/ocrolus",
                method: .post,
                headers: h.signedHeaders(body),
                body: ByteBuffer(string: body)
            )
            #expect(answer.status == .forbidden)
            #expect(answer.json["error"]?.contains("not allowed") == true)
        }
        #expect(try await h.store.inboxCount() == 0)
    }

    @Test func aStrangersBodyIsNeverReadEvenWhenItIsTooLarge() async throws {
        // Forbidden source or wrong Basic credentials: refused from the headers, before the body
        // (a 403/401, not the 413 that reading it would have given).
        let big = #"{"book_pk":1,"pad":""# + String(repeating: "x", count: 300) + #""}"#
        let forbidden = try IngressHarness(access: WebhookAccessPolicy(allow: [CIDR("18.205.30.63/32")!]), bodyLimit: 256)
        try await forbidden.application().test(.router) { client in
            let answer = try await client.execute(
                uri: "/webhooks/ocrolus",
                method: .post,
                headers: forbidden.signedHeaders(big),
                body: ByteBuffer(string: big)
            )
            #expect(answer.status == .forbidden)
        }
        let basic = try IngressHarness(access: WebhookAccessPolicy(basicCredentials: "ocrolus:pa55word"), bodyLimit: 256)
        try await basic.application().test(.router) { client in
            let answer = try await client.execute(
                uri: "/webhooks/ocrolus",
                method: .post,
                headers: basic.signedHeaders(big),
                body: ByteBuffer(string: big)
            )
            #expect(answer.status == .unauthorized)
        }
    }

    @Test func aFullWriterQueueRefusesWith503InsteadOfGrowing() async throws {
        let h = try IngressHarness()
        // A writer that is not running: nothing drains its queue, which holds two deliveries.
        let writer = InboxWriter(store: h.store, health: h.health, logger: quietLogger, maxQueued: 2)
        let delivery = InboxDelivery(requestID: nil, receivedAt: h.clock.now(), bookUUID: nil, bookPK: 1, event: "x", body: [])
        let queued = (0..<2).map { _ in Task { try await writer.append(delivery) } }
        try await AdversaryTests.until { writer.queuedCount == 2 }
        await #expect(throws: InboxWriter.Full.self) { try await writer.append(delivery) }
        writer.close()
        for task in queued { task.cancel() }
        let drain = Task { try await writer.run() }
        for task in queued { _ = try await task.value }
        try await drain.value
        #expect(try await h.store.inboxCount() == 2)
    }

    /// Cancelled (another service of the group failed), the writer still stores what is queued
    /// and answers each caller with its row, rather than failing them all with the cancellation.
    @Test func aCancelledWriterStillStoresWhatIsQueued() async throws {
        let h = try IngressHarness()
        let writer = InboxWriter(store: h.store, health: h.health, logger: quietLogger)
        let queued = (0..<3).map { n in
            Task {
                try await writer.append(InboxDelivery(requestID: "q\(n)", receivedAt: h.clock.now(), bookUUID: nil, bookPK: 1, event: "x", body: []))
            }
        }
        try await AdversaryTests.until { writer.queuedCount == 3 }
        let running = Task { try await writer.run() }
        running.cancel()
        try await running.value
        for task in queued {
            guard case .stored = try await task.value else {
                Issue.record("a queued delivery was not stored")
                continue
            }
        }
        #expect(try await h.store.inboxCount() == 3)
        #expect(h.health.isReady)  // a cancellation is not a database failure
    }

    /// The worst moment: the cancellation lands while a batch is being written. The store
    /// refuses a cancelled task's transaction (GRDB interrupts it), so the write must not be in
    /// the cancelled task at all.
    @Test func aCancellationDuringAWriteDoesNotFailTheBatch() async throws {
        let h = try IngressHarness()
        let gate = Gate()
        // Held, then refused if the calling task was cancelled meanwhile, as GRDB does with a
        // transaction it is in.
        let gated = HookedInboxStore(base: h.store) { base, deliveries in
            await gate.wait()
            try Task.checkCancellation()
            return try await base.appendToInbox(batch: deliveries)
        }
        let writer = InboxWriter(store: gated, health: h.health, logger: quietLogger)
        let running = Task { try await writer.run() }
        let delivery = Task {
            try await writer.append(InboxDelivery(requestID: "mid-write", receivedAt: h.clock.now(), bookUUID: nil, bookPK: 1, event: "x", body: []))
        }
        try await AdversaryTests.until { gate.heldCount == 1 }  // the batch is in its write
        running.cancel()
        gate.release()
        try await running.value
        guard case .stored = try await delivery.value else {
            Issue.record("the delivery in the write was not stored")
            return
        }
        #expect(h.health.isReady)
    }

    /// Closed with the database down: after the first failed batch the rest of the queue is
    /// answered at once, not batch by batch each waiting out the store's timeout.
    @Test func aClosedWriterWithTheDatabaseDownFailsTheRestAtOnce() async throws {
        let h = try IngressHarness()
        let appends = Mutex(0)
        let failing = HookedInboxStore(base: h.store) { _, _ in
            appends.withLock { $0 += 1 }
            throw StoreError(.unavailable, subject: "test", detail: "down")
        }
        let writer = InboxWriter(store: failing, health: h.health, logger: quietLogger, maxBatch: 1)
        let queued = (0..<3).map { n in
            Task {
                try await writer.append(
                    InboxDelivery(requestID: "down\(n)", receivedAt: h.clock.now(), bookUUID: nil, bookPK: 1, event: "x", body: [])
                )
            }
        }
        try await AdversaryTests.until { writer.queuedCount == 3 }
        writer.close()
        try await writer.run()
        for task in queued { await #expect(throws: (any Error).self) { try await task.value } }
        #expect(appends.withLock { $0 } == 1)  // one write tried, the other two answered without one
    }

    /// Holds each call until `release()`.
    final class Gate: Sendable {
        private let held = Mutex<[CheckedContinuation<Void, Never>]>([])
        var heldCount: Int { held.withLock { $0.count } }
        func wait() async { await withCheckedContinuation { continuation in held.withLock { $0.append(continuation) } } }
        func release() {
            for continuation in held.withLock({ held in
                defer { held = [] }
                return held
            }) { continuation.resume() }
        }
    }

    /// An inbox whose batch appends go through `batch` (a gate, a failure), the rest to `base`.
    final class HookedInboxStore: InboxStore {
        let base: any InboxStore
        let batch: @Sendable (any InboxStore, [InboxDelivery]) async throws -> [InboxAppendOutcome]
        init(base: any InboxStore, batch: @escaping @Sendable (any InboxStore, [InboxDelivery]) async throws -> [InboxAppendOutcome]) {
            self.base = base
            self.batch = batch
        }
        func appendToInbox(batch deliveries: [InboxDelivery]) async throws -> [InboxAppendOutcome] { try await batch(base, deliveries) }
        func appendToInbox(_ delivery: InboxDelivery) async throws -> InboxAppendOutcome { try await base.appendToInbox(delivery) }
        func inboxContains(requestID: String) async throws -> Bool { try await base.inboxContains(requestID: requestID) }
        func newestInboxID() async throws -> Int64 { try await base.newestInboxID() }
        func inboxDeliveries(after id: Int64, limit: Int) async throws -> [StoredDelivery] { try await base.inboxDeliveries(after: id, limit: limit) }
        func claimInbox(owner: String, now: Date, limit: Int, lease: TimeInterval) async throws -> [StoredDelivery] {
            try await base.claimInbox(owner: owner, now: now, limit: limit, lease: lease)
        }
        func markProcessed(_ id: Int64, at: Date, outcome: InboxOutcome) async throws -> Bool {
            try await base.markProcessed(id, at: at, outcome: outcome)
        }
        func markProcessed(batch: [InboxMark], owner: String, at: Date) async throws -> Set<Int64> {
            try await base.markProcessed(batch: batch, owner: owner, at: at)
        }
        func releaseInbox(_ ids: [Int64]) async throws { try await base.releaseInbox(ids) }
        func deferInbox(_ id: Int64, owner: String, until: Date) async throws { try await base.deferInbox(id, owner: owner, until: until) }
    }

    @Test func bodyOverTheLimitIs413() async throws {
        let h = try IngressHarness(bodyLimit: 256)
        let big = #"{"book_pk":1,"pad":""# + String(repeating: "x", count: 300) + #""}"#
        try await h.application().test(.router) { client in
            let answer = try await client.execute(
                uri: "/webhooks/ocrolus",
                method: .post,
                headers: h.signedHeaders(big),
                body: ByteBuffer(string: big)
            )
            #expect(answer.status == .contentTooLarge)
            // Just under the limit is fine.
            let small = #"{"book_pk":1}"#
            #expect(
                try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: h.signedHeaders(small), body: ByteBuffer(string: small))
                    .status == .ok
            )
        }
        #expect(try await h.store.inboxCount() == 1)
    }

    /// A body whose reading failed is 413 only when it went over the limit; cut off (the sender
    /// went away, the connection failed) it is 400 `unreadable`, not counted as too large.
    @Test func aBodyNotReadToItsEndIsNotTooLarge() {
        struct ConnectionReset: Error {}
        let admission = WebhookAdmission(bodyLimit: 256, verifier: nil)
        let over = WebhookIngress.bodyNotRead(NIOTooManyBytesError(maxBytes: 256), admission)
        #expect(over.status == 413 && over.outcome == .tooLarge)
        let cut = WebhookIngress.bodyNotRead(ConnectionReset(), admission)
        #expect(cut.status == 400 && cut.outcome == .unreadable)
    }

    @Test func healthAndReadiness() async throws {
        let h = try IngressHarness()
        try await h.application().test(.router) { client in
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            let ready = try await client.execute(uri: "/readyz", method: .get)
            #expect(ready.status == .ok)
            #expect(ready.json["database"] == "writable")
            #expect(try await client.execute(uri: "/books/09c52985-2f05-4022-a738-9277cc335c7e", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/books/nope", method: .get).status == .badRequest)
        }
    }
}
