import BookWatchCore
import Foundation
import Testing

@testable import OcrolusAPI

/// The webhook setup check, as a table: what is registered → the gaps named.
@Suite struct WebhookSetupCheckTests {
    static let url = "https://bookwatch.example.com/webhooks/ocrolus"
    static let all = WebhookSubscription.defaultEventNames

    static func webhook(_ id: String, url: String = url, events: [String] = all, secret: Bool? = true) -> RegisteredWebhook {
        RegisteredWebhook(id: id, url: url, description: "", eventNames: events, hasSecret: secret)
    }

    @Test func aCompleteSetupHasNoGaps() {
        let check = WebhookSetupCheck(registered: [Self.webhook("1")], serviceURL: Self.url, secretConfigured: true)
        #expect(check.gaps.isEmpty)
        #expect(check.serving.map(\.id) == ["1"])
        #expect(check.notes.isEmpty)
    }

    @Test(arguments: [
        // URLs Ocrolus treats as the same compare equal.
        "HTTPS://BookWatch.Example.com/webhooks/ocrolus", "https://bookwatch.example.com:443/webhooks/ocrolus",
        "https://bookwatch.example.com/webhooks/ocrolus/",
    ])
    func theServiceURLMatchesRegardlessOfSpelling(_ registered: String) {
        let check = WebhookSetupCheck(registered: [Self.webhook("1", url: registered)], serviceURL: Self.url, secretConfigured: true)
        #expect(check.gaps.isEmpty)
    }

    @Test func noWebhookHereIsOneGapNamingWhatIsRegistered() {
        let other = Self.webhook("7", url: "https://elsewhere.example.com/hooks")
        let check = WebhookSetupCheck(registered: [other], serviceURL: Self.url, secretConfigured: true)
        #expect(check.gaps.count == 1)
        #expect(check.gaps[0].problem.contains("no webhook delivers to \(Self.url)"))
        #expect(check.gaps[0].problem.contains("elsewhere.example.com"))
        // Without a service URL, any bookwatch path counts; this one is not.
        #expect(WebhookSetupCheck(registered: [other], serviceURL: nil, secretConfigured: true).gaps.count == 1)
        #expect(WebhookSetupCheck(registered: [Self.webhook("1")], serviceURL: nil, secretConfigured: true).gaps.isEmpty)
    }

    @Test func eachMissingEventIsAGapWithItsCost() {
        let check = WebhookSetupCheck(
            registered: [Self.webhook("1", events: ["book.verified", "book.classified"])],
            serviceURL: Self.url,
            secretConfigured: true
        )
        let missing = ["document.upload_succeeded", "document.verification_succeeded", "book.completed", "book.analytics_v2.generated"]
        #expect(check.gaps.map(\.webhookID) == Array(repeating: "1", count: 4))
        for (gap, name) in zip(check.gaps, missing) {
            #expect(gap.problem.hasPrefix("\(name) is not subscribed: "))
            #expect(gap.problem.count > "\(name) is not subscribed: ".count + 20)
        }
    }

    @Test func eventsCountOverEveryWebhookDeliveringHereAndDuplicatesAreNoted() {
        let books = Self.webhook("1", events: ["book.verified", "book.completed", "book.analytics_v2.generated"])
        let documents = Self.webhook("2", url: Self.url + "/", events: ["document.upload_succeeded", "document.verification_succeeded"])
        let check = WebhookSetupCheck(registered: [books, documents], serviceURL: Self.url, secretConfigured: true)
        #expect(check.gaps.isEmpty)
        #expect(check.notes.count == 1)
        #expect(check.notes[0].contains("2 webhooks deliver here"))
    }

    @Test func accountLevelNamesCountAsTheirOrgLevelTwins() {
        let missing = WebhookSubscription.missing(from: ["BOOK_VERIFIED", "DOC_VERIFIED"]).map(\.event.name)
        #expect(missing == ["document.upload_succeeded", "book.completed", "book.analytics_v2.generated"])
        #expect(WebhookSubscription.missing(from: Self.all).isEmpty)
    }

    @Test func secretsOnBothSides() {
        let unsigned = WebhookSetupCheck(registered: [Self.webhook("1", secret: false)], serviceURL: Self.url, secretConfigured: false)
        #expect(unsigned.gaps.map(\.description).count == 2)
        #expect(unsigned.gaps[0].description.hasPrefix("webhook 1: no signing secret is set at Ocrolus"))
        #expect(unsigned.gaps[1].problem.hasPrefix("BOOKWATCH_WEBHOOK_SECRET is not set"))
        // Ocrolus not saying is a note, not a gap.
        let unknown = WebhookSetupCheck(registered: [Self.webhook("1", secret: nil)], serviceURL: Self.url, secretConfigured: true)
        #expect(unknown.gaps.isEmpty)
        #expect(unknown.notes.count == 1)
    }

    @Test func fingerprintsAreShortStableAndDistinct() {
        let a = WebhookVerifier.fingerprint("whsec-a-0123456789abcdef")
        #expect(a.count == 12)
        #expect(a == WebhookVerifier.fingerprint("whsec-a-0123456789abcdef"))
        #expect(a != WebhookVerifier.fingerprint("whsec-b-0123456789abcdef"))
        let generated = Set((0..<50).map { _ in WebhookVerifier.generateSecret() })
        #expect(generated.count == 50)
        #expect(generated.allSatisfy { $0.count == 64 && $0.allSatisfy(\.isHexDigit) })
        #expect(generated.allSatisfy { (try? WebhookVerifier(secrets: [$0])) != nil })
    }

    @Test func answersAreReadLeniently() throws {
        let numeric = try #require(RegisteredWebhook(json: ["id": 12, "url": Self.url, "event_names": ["book.verified"]]))
        #expect(numeric.id == "12")
        #expect(numeric.hasSecret == nil)
        #expect(numeric.description == "")
        let textual = try #require(
            RegisteredWebhook(json: ["webhook_id": "wh_9", "url": Self.url, "events": ["book.completed"], "has_secret": false])
        )
        #expect(textual.id == "wh_9")
        #expect(textual.eventNames == ["book.completed"])
        #expect(RegisteredWebhook(json: ["url": Self.url]) == nil)
        #expect(RegisteredWebhook(json: ["id": 1]) == nil)
        let report = try #require(
            WebhookDeliveryReport(json: ["request_id": "r1", "event": "book.verified", "response_status": 503, "created_at": "2026-12-01T00:00:00Z"])
        )
        #expect(
            report
                == WebhookDeliveryReport(requestID: "r1", eventName: "book.verified", httpStatus: 503, attempt: nil, sentAt: "2026-12-01T00:00:00Z")
        )
    }
}
