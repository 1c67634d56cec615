import BookWatchCore
import BookWatchStore
import Foundation
import OcrolusAPI
import Synchronization
import Testing

@testable import BookWatchService

/// The transport-free admission every delivery passes (the HTTP route and the simulated
/// deployments both answer from it): order of the checks, the row it builds, the answers.
@Suite struct WebhookAdmissionTests {
    let now = Date(timeIntervalSince1970: 1_774_000_000)
    let secret = "whsec-admission-test-0123456789"
    let body = Array(#"{"event_name":"book.verified","book_uuid":"09c52985-2f05-4022-a738-9277cc335c7e","book_pk":7}"#.utf8)

    func signed(_ body: [UInt8], requestID: String = "req-1") -> [(String, String)] {
        let timestamp = String(Int(now.timeIntervalSince1970))
        return [
            ("webhook-request-id", requestID), ("Webhook-Timestamp", timestamp),
            ("WEBHOOK-SIGNATURE", WebhookVerifier.sign(body: body, timestamp: timestamp, requestID: requestID, secret: secret)),
        ]
    }

    /// An `append` that records what it was given and answers `outcome` (or throws).
    final class Sink: Sendable {
        let rows = Mutex<[InboxDelivery]>([])
        let fails: Bool
        init(fails: Bool = false) { self.fails = fails }
        func append(_ delivery: InboxDelivery) throws -> InboxAppendOutcome {
            if fails { throw StoreError(.unavailable, subject: "test", detail: "down") }
            return rows.withLock { rows in
                defer { rows.append(delivery) }
                // As the stores' unique index: rows without an id never conflict.
                let seen = delivery.requestID.map { id in rows.contains { $0.requestID == id } } ?? false
                return seen ? .duplicate : .stored(id: Int64(rows.count + 1))
            }
        }
    }

    @Test func aSignedDeliveryIsStoredAuthenticatedAndAnsweredOnlyOnceStored() async throws {
        let admission = WebhookAdmission(verifier: try WebhookVerifier(secrets: [secret]))
        let sink = Sink()
        let health = ServiceHealth(startedAt: now)
        let first = await admission.receive(headers: signed(body), body: body, peer: "10.0.0.1", now: now, health: health) { try sink.append($0) }
        #expect(first == WebhookAnswer(outcome: .accepted, status: 200))
        let again = await admission.receive(headers: signed(body), body: body, peer: "10.0.0.1", now: now, health: health) { try sink.append($0) }
        #expect(again == WebhookAnswer(outcome: .duplicate, status: 200))
        let row = try #require(sink.rows.withLock { $0.first })
        #expect(row.authenticated && row.requestID == "req-1" && row.bookPK == 7 && row.remoteAddress == "10.0.0.1")
        #expect(row.bookUUID == BookUUID("09c52985-2f05-4022-a738-9277cc335c7e") && row.event == "book.verified" && row.body == body)
        // The decoded hint is stored with the row: the watcher applies it without decoding again.
        #expect(row.hint == (try DecodedWebhook.decode(body)).hint)
        #expect(row.hint?.event == .bookVerified)
    }

    /// An empty request id is signed as sent but stored as none: two different deliveries that
    /// both carry one are two rows, not a "duplicate" answered 200 and never stored.
    @Test func anEmptyRequestIDIsNoIdentity() async throws {
        let admission = WebhookAdmission(verifier: try WebhookVerifier(secrets: [secret]))
        let sink = Sink()
        let health = ServiceHealth(startedAt: now)
        let other = Array(#"{"event_name":"book.completed","book_uuid":"09c52985-2f05-4022-a738-9277cc335c7e"}"#.utf8)
        for delivery in [body, other] {
            let answer = await admission.receive(headers: signed(delivery, requestID: ""), body: delivery, peer: nil, now: now, health: health) {
                try sink.append($0)
            }
            #expect(answer == WebhookAnswer(outcome: .accepted, status: 200))
        }
        #expect(sink.rows.withLock { $0.map(\.requestID) } == [nil, nil])
    }

    @Test func anUnsignedDeploymentStoresDeliveriesUnauthenticated() async throws {
        let sink = Sink()
        let answer = await WebhookAdmission(verifier: nil).receive(
            headers: [],
            body: body,
            peer: nil,
            now: now,
            health: ServiceHealth(startedAt: now)
        ) { try sink.append($0) }
        #expect(answer.status == 200)
        #expect(sink.rows.withLock { $0.first?.authenticated } == false)
    }

    @Test func aStoreThatFailsAnswers503WithRetryAfterNever200() async throws {
        let answer = await WebhookAdmission(verifier: nil).receive(
            headers: [],
            body: body,
            peer: nil,
            now: now,
            health: ServiceHealth(startedAt: now)
        ) { try Sink(fails: true).append($0) }
        #expect(answer.status == 503 && answer.outcome == .unavailable && answer.retryAfter == 5)
    }

    @Test func theHeadersAloneRefuseAStrangerBeforeTheBodyIsRead() throws {
        var access = WebhookAccessPolicy(allow: [try #require(CIDR("18.205.30.63"))])
        access.basicCredentials = "ocrolus:pass-word"
        let admission = WebhookAdmission(bodyLimit: 100, access: access, verifier: nil)
        let basic = "Basic " + Data("ocrolus:pass-word".utf8).base64EncodedString()
        let headers: [String: String] = ["authorization": basic]
        let lookup = { (name: String) in headers[name.lowercased()] }
        guard case .refuse(let stranger) = admission.screen(header: lookup, peer: "10.0.0.1") else {
            Issue.record("a stranger's delivery passed the screen")
            return
        }
        #expect(stranger.status == 403 && stranger.outcome == .forbiddenSource)
        guard case .refuse(let noCredentials) = admission.screen(header: { _ in nil }, peer: "18.205.30.63") else {
            Issue.record("a delivery without credentials passed the screen")
            return
        }
        #expect(noCredentials.status == 401 && noCredentials.challengesBasic)
        let tooLong = { (name: String) in name == WebhookAdmission.Header.contentLength ? "101" : lookup(name) }
        guard case .refuse(let large) = admission.screen(header: tooLong, peer: "18.205.30.63") else {
            Issue.record("a declared length over the limit passed the screen")
            return
        }
        #expect(large.status == 413 && large.outcome == .tooLarge)
        #expect(admission.screen(header: lookup, peer: "18.205.30.63") == .read(client: "18.205.30.63"))
    }

    @Test func theSignatureIsCheckedBeforeThePayloadIsDecoded() async throws {
        let admission = WebhookAdmission(verifier: try WebhookVerifier(secrets: [secret]))
        let garbage = Array("not json".utf8)
        // A bad signature on a body that would not decode either: the signature answers.
        var headers = signed(garbage)
        headers[2].1 = "v1,AAAA"
        let forged = await admission.receive(headers: headers, body: garbage, peer: nil, now: now, health: ServiceHealth(startedAt: now)) {
            _ in .stored(id: 1)
        }
        #expect(forged.status == 401 && forged.outcome == .badSignature)
        let malformed = await admission.receive(headers: signed(garbage), body: garbage, peer: nil, now: now, health: ServiceHealth(startedAt: now)) {
            _ in .stored(id: 1)
        }
        #expect(malformed.status == 400 && malformed.outcome == .malformed)
    }

    @Test func aBodyOverTheLimitIsRefusedWithoutBeingStored() async {
        let sink = Sink()
        let answer = await WebhookAdmission(bodyLimit: 10, verifier: nil).receive(
            headers: [],
            body: body,
            peer: nil,
            now: now,
            health: ServiceHealth(startedAt: now)
        ) { try sink.append($0) }
        #expect(answer.status == 413)
        #expect(sink.rows.withLock { $0.isEmpty })
    }
}
