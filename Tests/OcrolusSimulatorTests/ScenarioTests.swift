import BookWatchCore
import Foundation
import OcrolusAPI
import OcrolusSimulator
import Testing

@testable import OcrolusSimulator

@Suite struct ScenarioTests {
    func config(seed: UInt64, books: Int = 200) -> SimulationConfig {
        var config = SimulationConfig()
        config.seed = seed
        config.books = books
        return config
    }

    @Test func reproducibleFromItsSeed() {
        let a = Scenario(config: config(seed: 42))
        let b = Scenario(config: config(seed: 42))
        let c = Scenario(config: config(seed: 43))
        #expect(a.books.map(\.uuid) == b.books.map(\.uuid))
        #expect(a.books.map { $0.documents.map(\.finishAt) } == b.books.map { $0.documents.map(\.finishAt) })
        #expect(a.books.map(\.deletedAt) == b.books.map(\.deletedAt))
        #expect(a.events().map(\.body) == b.events().map(\.body))
        #expect(a.books.map(\.uuid) != c.books.map(\.uuid))
    }

    @Test func realisticMixOfOutcomes() {
        let books = Scenario(config: config(seed: 3, books: 500)).books
        let documents = books.flatMap(\.documents)
        #expect(books.allSatisfy { (1...6).contains($0.documents.count) })
        #expect(documents.contains { $0.outcome == .rejected })
        #expect(documents.contains { $0.outcome == .failed })
        #expect(books.contains { $0.generations.count == 2 })  // reopened after VERIFIED
        #expect(books.contains { $0.deletedAt != nil })
        // A reopened Book goes back to VERIFYING between its generations.
        let reopened = books.first { $0.generations.count == 2 && $0.deletedAt == nil }
        if let reopened, let added = reopened.documents.last {
            #expect(reopened.bookStatus(at: added.uploadAt + 1) == .verifying)
            #expect(reopened.generation(at: added.uploadAt + 1) == 1)
            #expect(reopened.bookStatus(at: added.finishAt) == .verified)
            #expect(reopened.generation(at: added.finishAt) == 2)
        } else {
            Issue.record("no reopened book in 500")
        }
    }

    @Test func documentStatusesAdvanceThroughRealisticStates() {
        let document = SimDocument(pk: 1, uuid: "u", name: "n", uploadAt: 100, classifyAt: 140, finishAt: 200, outcome: .rejected)
        #expect(document.status(at: 99) == nil)
        #expect(document.status(at: 100) == .uploaded)
        #expect(document.status(at: 115) == .processing)
        #expect(document.status(at: 150) == .classified)
        #expect(document.status(at: 180) == .verifying)
        #expect(document.status(at: 200) == .rejected)
    }

    @Test func bothFlavoursProduceDecodableWebhooks() throws {
        for flavour in WebhookFlavour.allCases {
            var configuration = config(seed: 5, books: 30)
            configuration.flavour = flavour
            let events = Scenario(config: configuration).events()
            #expect(!events.isEmpty)
            for event in events {
                let decoded = try DecodedWebhook.decode(event.body)
                #expect(decoded.bookUUID != nil || decoded.bookPK != nil)
            }
            let names = Set(events.map(\.name))
            switch flavour {
            case .org: #expect(names.contains("book.verified") && names.contains("book.completed"))
            case .account: #expect(names.isSubset(of: ["", "DOC_VERIFIED", "BOOK_VERIFIED"]))
            case .mixed: #expect(names.contains("BOOK_VERIFIED") && names.contains("book.verified"))
            }
        }
    }
}
