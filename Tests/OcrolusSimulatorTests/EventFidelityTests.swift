import BookWatchCore
import Foundation
import OcrolusAPI
import OcrolusSimulator
import Testing

/// The simulator sends only the events Ocrolus documents (../shared/docs/ocrolus-api.md,
/// "Webhooks"), so bookwatch is never tested against an event it will not meet.
@Suite struct EventFidelityTests {
    static let documentedOrgEvents: Set<String> = [
        "document.upload_succeeded", "document.classification_succeeded", "book.classified", "document.verification_succeeded",
        "book.verified", "book.analytics_v2.generated", "document.detect.signal_found", "book.detect.signal_found", "book.completed",
    ]
    /// Account level: the upper-case events, and the documented thin body without a name.
    static let documentedAccountEvents: Set<String> = ["DOC_VERIFIED", "BOOK_VERIFIED", ""]

    static func scenario(_ flavour: WebhookFlavour) -> Scenario {
        var config = SimulationConfig()
        config.books = 200
        config.seed = 5
        config.flavour = flavour
        config.rejectFraction = 0.2
        config.failFraction = 0.1
        return Scenario(config: config)
    }

    @Test(arguments: [WebhookFlavour.org, .account, .mixed])
    func everyEventNameIsDocumentedAndDecodesToAKnownEvent(_ flavour: WebhookFlavour) throws {
        let events = Self.scenario(flavour).events()
        #expect(events.count > 500)
        for event in events {
            #expect(Self.documentedOrgEvents.union(Self.documentedAccountEvents).contains(event.name), "\(event.name)")
            let decoded = try DecodedWebhook.decode(event.body)
            if case .unknown(let name) = decoded.hint.event { Issue.record("\(flavour): '\(name)' decodes as unknown") }
        }
    }

    @Test func rejectedAndFailedDocumentsHaveNoOrgLevelVerificationEvent() throws {
        let scenario = Self.scenario(.org)
        let events = scenario.events()
        let unverified = scenario.books.flatMap(\.documents).filter { $0.outcome != .verificationComplete }
        #expect(unverified.count > 50)
        for document in unverified {
            let named = events.filter { String(decoding: $0.body, as: UTF8.self).contains(document.uuid) }
            #expect(named.contains { $0.name == "document.upload_succeeded" })
            #expect(!named.contains { $0.name.hasPrefix("document.verification") }, "\(document.uuid)")
        }
        // A Book deleted before its document finished sends nothing more.
        let verified = scenario.books.flatMap { book in
            book.documents.filter { $0.outcome == .verificationComplete && !book.isDeleted(at: $0.finishAt) }
        }
        #expect(verified.count > 50)
        for document in verified.prefix(50) {
            #expect(
                events.contains { $0.name == "document.verification_succeeded" && String(decoding: $0.body, as: UTF8.self).contains(document.uuid) }
            )
        }
    }
}
