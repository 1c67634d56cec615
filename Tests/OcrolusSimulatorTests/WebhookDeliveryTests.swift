import BookWatchClocks
import BookWatchCore
import Foundation
import OcrolusAPI
import OcrolusSimulator
import Synchronization
import Testing

final class Received: Sendable {
    let deliveries = Mutex<[WebhookDelivery]>([])
    func add(_ delivery: WebhookDelivery) { deliveries.withLock { $0.append(delivery) } }
    var all: [WebhookDelivery] { deliveries.withLock { $0 } }
}

@Suite struct WebhookDeliveryTests {
    /// Runs the scenario's webhooks to the end on the manual clock, answering with `answer`.
    func drain(_ sim: SimulatorHarness, answer: @escaping @Sendable (WebhookDelivery) -> Int?) async -> Received {
        let received = Received()
        let sender = WebhookSender(
            simulation: sim.simulation,
            target: ClosureWebhookTarget { delivery in
                received.add(delivery)
                return answer(delivery)
            }
        )
        while await !sim.simulation.webhooksExhausted {
            await sender.deliverDue()
            if let next = await sim.simulation.nextWebhookDueAt() { sim.clock.advance(to: next) }
        }
        return received
    }

    @Test func everyChangeIsSentSignedWhenASecretIsSet() async throws {
        let secret = "whsec-simulated-0123456789"
        let sim = SimulatorHarness {
            $0.webhookSecret = secret
            $0.books = 5
        }
        let verifier = try WebhookVerifier(secrets: [secret])
        let clock = sim.clock
        // Verified as it arrives, against the clock at that moment (tolerance 300 s).
        let received = await drain(sim) { delivery in
            let header = { (name: String) in delivery.headers.first { $0.0 == name }?.1 }
            do {
                try verifier.verify(
                    body: delivery.body,
                    timestamp: header("Webhook-Timestamp"),
                    requestID: header("Webhook-Request-Id"),
                    signature: header("Webhook-Signature"),
                    now: clock.now()
                )
                return 200
            } catch {
                return 401
            }
        }
        let stats = await sim.simulation.stats()
        #expect(stats.webhooksGenerated > 5 * 3)
        #expect(received.all.count == stats.webhooksGenerated)
        #expect(stats.deliveryAnswers == ["200": stats.webhooksGenerated])
        #expect(Set(received.all.map(\.requestID)).count == received.all.count)
    }

    @Test func unsignedWithoutASecret() async throws {
        let sim = SimulatorHarness { $0.books = 2 }
        let received = await drain(sim) { _ in 200 }
        #expect(received.all.allSatisfy { delivery in !delivery.headers.contains { $0.0 == "Webhook-Signature" } })
    }

    @Test func failedDeliveriesAreRetriedThreeTimesThenDropped() async throws {
        let sim = SimulatorHarness { $0.books = 1 }
        let received = await drain(sim) { _ in 503 }
        let stats = await sim.simulation.stats()
        #expect(received.all.count == stats.webhooksGenerated * 4)
        #expect(stats.deliveriesAbandoned == stats.webhooksGenerated)
        #expect(stats.deliveryAnswers == ["503": stats.webhooksGenerated * 4])
        // Retries carry the same request id, so a receiver can deduplicate them.
        let byID = Dictionary(grouping: received.all, by: \.requestID)
        #expect(byID.values.allSatisfy { $0.count == 4 && $0.map(\.attempt) == [0, 1, 2, 3] })
    }

    @Test func aTimeoutCountsAsFailureAndASuccessStopsRetries() async throws {
        let sim = SimulatorHarness { $0.books = 1 }
        let received = await drain(sim) { delivery in delivery.attempt == 0 ? nil : 200 }
        let stats = await sim.simulation.stats()
        #expect(received.all.count == stats.webhooksGenerated * 2)
        #expect(stats.deliveryAnswers["0"] == stats.webhooksGenerated)
        #expect(stats.deliveriesAbandoned == 0)
    }

    @Test func faultsDropDuplicateAndReorder() async throws {
        let sim = SimulatorHarness {
            $0.books = 40
            $0.faults.webhookDrop = 0.3
            $0.faults.webhookDuplicate = 0.2
            $0.faults.webhookDelay = 0.3
        }
        let received = await drain(sim) { _ in 200 }
        let stats = await sim.simulation.stats()
        #expect(stats.webhooksDroppedByFault > 0)
        #expect(stats.webhooksDuplicated > 0)
        #expect(received.all.count == stats.webhooksGenerated - stats.webhooksDroppedByFault + stats.webhooksDuplicated)
        // Reordered: some delivery arrives after a later-generated one.
        let order = received.all.map(\.id)
        #expect(order != order.sorted())
    }

    @Test func lossCanStartPartWayThrough() async throws {
        let sim = SimulatorHarness {
            $0.books = 30
            $0.faults.webhookDrop = 1
            $0.faults.webhookDropFrom = 900
        }
        let received = await drain(sim) { _ in 200 }
        let stats = await sim.simulation.stats()
        // Every event before the 15th minute arrives, none after.
        #expect(!received.all.isEmpty && stats.webhooksDroppedByFault > 0)
        #expect(received.all.count + stats.webhooksDroppedByFault == stats.webhooksGenerated)
        #expect(received.all.allSatisfy { $0.dueAt < 900 })  // seconds into the scenario
    }

    @Test func noWebhooksAtAll() async throws {
        let sim = SimulatorHarness { $0.webhooksEnabled = false }
        let received = await drain(sim) { _ in 200 }
        #expect(received.all.isEmpty)
    }
}

/// Webhooks registered through the management API get exactly the events they subscribe, signed
/// with their own secret; what each was sent is reported by `GET /webhook/{id}/events`.
@Suite struct RegisteredWebhookDeliveryTests {
    @Test func aRegistrationGetsItsSubscribedEventsOnlyAndTheLogSaysWhatWasSent() async throws {
        let sim = SimulatorHarness {
            $0.webhooksEnabled = false  // no configured target: only the registration is delivered to
            $0.books = 4
        }
        let secret = "whsec-registered-0123456789"
        let client = sim.client
        let registered = try await client.registerWebhook(
            url: "https://lender.example.com/webhooks/ocrolus",
            description: "",
            events: ["book.verified"]
        )
        try await client.rotateWebhookSecret(id: registered.id, secret: secret)
        let verifier = try WebhookVerifier(secrets: [secret])
        let clock = sim.clock
        let received = Received()
        let sender = WebhookSender(
            simulation: sim.simulation,
            target: ClosureWebhookTarget { delivery in
                received.add(delivery)
                let header: (String) -> String? = { name in delivery.headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1 }
                let signed =
                    (try? verifier.verify(
                        body: delivery.body,
                        timestamp: header("Webhook-Timestamp"),
                        requestID: header("Webhook-Request-Id"),
                        signature: header("Webhook-Signature"),
                        now: clock.now()
                    )) != nil
                return signed ? (delivery.attempt == 0 ? 503 : 200) : 401
            }
        )
        while await !sim.simulation.webhooksExhausted {
            await sender.deliverDue()
            if let next = await sim.simulation.nextWebhookDueAt() { clock.advance(to: next) }
        }
        let all = received.all
        #expect(!all.isEmpty)
        #expect(all.allSatisfy { $0.eventName == "book.verified" && $0.registrationID == Int(registered.id) })
        // Every first attempt answered 503 was retried once and then answered 200.
        #expect(all.filter { $0.attempt == 0 }.count == all.filter { $0.attempt == 1 }.count)

        let log = try await client.webhookEvents(id: registered.id)
        #expect(log.count == all.count)
        #expect(log.map(\.httpStatus) == all.map { $0.attempt == 0 ? 503 : 200 })
        #expect(Set(log.compactMap(\.requestID)) == Set(all.map(\.requestID)))

        // At most five webhooks per organisation; a non-http URL is refused.
        for index in 2...5 { _ = try await client.registerWebhook(url: "https://lender.example.com/\(index)", description: "", events: []) }
        await #expect(throws: OcrolusError.self) {
            try await client.registerWebhook(url: "https://lender.example.com/6", description: "", events: [])
        }
        try await client.deleteWebhook(id: "5")
        await #expect(throws: OcrolusError.self) { try await client.registerWebhook(url: "mailto:x@example.com", description: "", events: []) }
        #expect(try await client.webhooks().count == 4)
    }
}
