import BookWatchClocks
import BookWatchCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import OcrolusAPI
import OcrolusSimulator
import Testing

@Suite struct SimulatorServerTests {
    @Test func servesTheDocumentedShapesOverASocket() async throws {
        let clock = ManualClock()
        var config = SimulationConfig()
        config.books = 3
        let simulation = OcrolusSimulation(config: config, clock: clock)
        clock.advance(to: config.start.addingTimeInterval(3600))
        let app = SimulatorServer.application(simulation: simulation, host: "127.0.0.1", port: 0)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let ocrolus = OcrolusClient(
                configuration: OcrolusConfiguration(
                    apiBaseURL: "http://127.0.0.1:\(port)",
                    tokenURL: "http://127.0.0.1:\(port)/oauth/token",
                    credentials: .init(clientID: "c", clientSecret: "s")
                ),
                transport: AsyncHTTPClientTransport(),
                limiter: RateLimiter(clock: clock),
                clock: clock
            )
            let book = try #require(simulation.scenario.books.first)
            let status = try await ocrolus.bookStatus(uuid: book.uuid, priority: .urgent)
            #expect(status.pk == book.pk)
            let byPK = try await ocrolus.bookStatus(pk: book.pk, priority: .urgent)
            #expect(byPK.uuid == book.uuid)
            // Raw shapes: the token answer and the status envelope.
            let token = try await client.execute(
                uri: "/oauth/token",
                method: .post,
                body: ByteBuffer(string: #"{"grant_type":"client_credentials","client_id":"c","client_secret":"s"}"#)
            )
            let tokenJSON = try #require(try JSONSerialization.jsonObject(with: Data(token.body.readableBytesView)) as? [String: Any])
            #expect(tokenJSON["token_type"] as? String == "Bearer")
            #expect(tokenJSON["expires_in"] as? Int == 3600)
            let stats = try await client.execute(uri: "/_sim/stats", method: .get)
            let statsJSON = try #require(try JSONSerialization.jsonObject(with: Data(stats.body.readableBytesView)) as? [String: Any])
            #expect(statsJSON["statusCalls"] as? Int == 2)
            #expect((statsJSON["truth"] as? [Any])?.count == 3)
        }
    }

    @Test func webhookManagementEndpoints() async throws {
        let clock = ManualClock()
        let simulation = OcrolusSimulation(config: SimulationConfig(), clock: clock)
        let app = SimulatorServer.application(simulation: simulation, host: "127.0.0.1", port: 0)
        try await app.test(.router) { client in
            let tokenAnswer = try await client.execute(
                uri: "/oauth/token",
                method: .post,
                body: ByteBuffer(string: "grant_type=client_credentials&client_id=a&client_secret=b")
            )
            let token = try #require(
                (try JSONSerialization.jsonObject(with: Data(tokenAnswer.body.readableBytesView)) as? [String: Any])?["access_token"] as? String
            )
            let auth: HTTPFields = [.authorization: "Bearer \(token)"]
            let created = try await client.execute(
                uri: "/v1/account/settings/webhook",
                method: .post,
                headers: auth,
                body: ByteBuffer(string: #"{"webhook":{"url":"http://127.0.0.1:1/hook","description":"d"},"event_names":["book.verified"]}"#)
            )
            #expect(created.status == .ok)
            let list = try await client.execute(uri: "/v1/account/settings/webhooks", method: .get, headers: auth)
            #expect(String(buffer: list.body).contains("http://127.0.0.1:1/hook"))
            let rotated = try await client.execute(
                uri: "/v1/account/settings/webhook/1/rotate-secret",
                method: .post,
                headers: auth,
                body: ByteBuffer(string: #"{"secret_key":"0123456789abcdef"}"#)
            )
            #expect(rotated.status == .ok)
            let test = try await client.execute(uri: "/v1/account/settings/webhook/1/test", method: .post, headers: auth)
            #expect(test.status == .ok)
            let due = await simulation.takeDueDeliveries()
            #expect(due.count == 1)
            #expect(due.first?.headers.contains { $0.0 == "Webhook-Signature" } == true)
            let deleted = try await client.execute(uri: "/v1/account/settings/webhook/1/delete", method: .delete, headers: auth)
            #expect(deleted.status == .ok)
            let unauthorized = try await client.execute(uri: "/v1/account/settings/webhooks", method: .get)
            #expect(unauthorized.status == .unauthorized)
        }
    }
}
