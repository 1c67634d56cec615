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
