import BookWatchClocks
import BookWatchCore
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import OcrolusSimulator
import Synchronization
import Testing

/// `bookwatch webhooks ...` against the simulator's management API, in-process; `serve`'s
/// `/readyz` is answered by a stand-in that lists the fingerprints a test chooses.
@Suite struct WebhooksCommandTests {
    static let publicURL = "https://bookwatch.example.com/webhooks/ocrolus"

    /// The simulator answering `http://simulator`, a stand-in `serve` answering `http://serve`.
    final class World: Sendable {
        let clock: ManualClock
        let simulation: OcrolusSimulation
        let cli: CLIHarness
        /// The secrets the stand-in serve accepts (nil: it does not answer).
        let serveSecrets = Mutex<[String]?>(nil)
        /// The secrets a second replica (`http://serve-b`) accepts (nil: it does not answer).
        let replicaSecrets = Mutex<[String]?>(nil)

        init() throws {
            var config = SimulationConfig()
            config.books = 2
            config.webhooksEnabled = false
            clock = ManualClock(start: config.start)
            simulation = OcrolusSimulation(config: config, clock: clock)
            cli = try CLIHarness()
        }

        var environment: [String: String] {
            [
                "BOOKWATCH_DATABASE": cli.databasePath, "OCROLUS_API_URL": "http://simulator",
                "OCROLUS_AUTH_URL": "http://simulator/oauth/token", "OCROLUS_CLIENT_ID": "lender",
                "OCROLUS_CLIENT_SECRET": "lender-secret-0123456789", "BOOKWATCH_PORT": "8080",
            ]
        }

        var transport: any HTTPTransport {
            Routing(simulator: SimulatorTransport(simulation: simulation), world: self)
        }

        func run(
            _ arguments: [String],
            _ extra: [String: String] = [:],
            sleep: @escaping @Sendable (TimeInterval) async throws -> Void = { _ in }
        )
            async -> Int32
        {
            await cli.run(arguments, environment: environment.merging(extra) { $1 }, sleep: sleep, transport: transport)
        }

        /// The simulator's record of webhook `id`.
        func registration(_ id: Int) async -> WebhookRegistration? {
            await simulation.registeredWebhooks().first { $0.id == id }
        }
    }

    struct Routing: HTTPTransport {
        let simulator: SimulatorTransport
        let world: World

        func send(_ request: OutgoingRequest) async throws -> IncomingResponse {
            if request.url.hasPrefix("http://simulator") { return try await simulator.send(request) }
            let answering = request.url.hasPrefix("http://serve-b") ? world.replicaSecrets.withLock { $0 } : world.serveSecrets.withLock { $0 }
            guard request.url.hasSuffix("/readyz"), let secrets = answering else { throw URLError(.cannotConnectToHost) }
            let body = #"{"status":"ready","webhook_secrets":"\#(secrets.map(WebhookVerifier.fingerprint).joined(separator: ","))"}"#
            return IncomingResponse(status: 200, body: Array(body.utf8))
        }
    }

    @Test func registerSubscribesExactlyTheEventsBookwatchUsesAndPrintsTheID() async throws {
        let world = try World()
        #expect(await world.run(["webhooks", "register", "--url", Self.publicURL]) == 0)
        #expect(world.cli.standardOutput == "1\n")
        let registration = try #require(await world.registration(1))
        #expect(registration.url == Self.publicURL)
        #expect(registration.eventNames == WebhookSubscription.defaultEventNames)
        #expect(registration.eventNames.count == 5)

        // The same URL again is refused, naming the webhook that has it.
        #expect(await world.run(["webhooks", "register"], ["BOOKWATCH_PUBLIC_URL": Self.publicURL]) == 1)
        #expect(world.cli.standardError.contains("webhook 1 already delivers"))
        #expect(await world.simulation.registeredWebhooks().count == 1)
    }

    @Test func registerNeedsAURLAndRejectsBadOnes() async throws {
        let world = try World()
        #expect(await world.run(["webhooks", "register"]) == 2)
        #expect(world.cli.standardError.contains("--url or BOOKWATCH_PUBLIC_URL"))
        #expect(await world.run(["webhooks", "register", "--url", "ftp://x/y"]) == 2)
        #expect(await world.run(["webhooks", "register", "--url", Self.publicURL, "--events", " , "]) == 2)
        #expect(await world.run(["webhooks", "register"], ["BOOKWATCH_PUBLIC_URL": "not a url"]) == 2)
        #expect(world.cli.standardError.contains("BOOKWATCH_PUBLIC_URL"))
        // No credentials: a configuration error naming the setting.
        let bare = await world.cli.run(["webhooks", "list"], environment: [:], transport: world.transport)
        #expect(bare == 2)
        #expect(world.cli.standardError.contains("OCROLUS_CLIENT_ID"))
        #expect(await world.simulation.registeredWebhooks().isEmpty)
    }

    @Test func listShowUpdateDeleteWithJSON() async throws {
        let world = try World()
        #expect(await world.run(["webhooks", "register", "--url", Self.publicURL, "--events", "book.verified"]) == 0)
        #expect(await world.run(["webhooks", "list", "--json"]) == 0)
        let listed = try JSONDecoder().decode([RegisteredWebhook].self, from: Data(world.cli.standardOutput.utf8))
        #expect(listed.map(\.id) == ["1"])
        #expect(listed.first?.eventNames == ["book.verified"])

        #expect(await world.run(["webhooks", "list"]) == 0)
        #expect(world.cli.standardOutput.contains("document.upload_succeeded"))  // the LACKS column

        #expect(await world.run(["webhooks", "update", "1"]) == 2)
        #expect(await world.run(["webhooks", "update", "1", "--events", WebhookSubscription.defaultEventNames.joined(separator: ",")]) == 0)
        #expect(await world.registration(1)?.eventNames == WebhookSubscription.defaultEventNames)
        #expect(await world.registration(1)?.url == Self.publicURL)

        #expect(await world.run(["webhooks", "show", "1", "--json"]) == 0)
        let shown = try JSONDecoder().decode(RegisteredWebhook.self, from: Data(world.cli.standardOutput.utf8))
        #expect(shown.description == "bookwatch")
        #expect(shown.hasSecret == false)

        #expect(await world.run(["webhooks", "delete", "1"]) == 0)
        #expect(await world.simulation.registeredWebhooks().isEmpty)
        #expect(await world.run(["webhooks", "show", "1"]) == 1)
        #expect(world.cli.standardError.contains("webhook 1"))
    }

    @Test func checkNamesEachGapAndPassesOnceTheSetupIsComplete() async throws {
        let world = try World()
        let secret = "whsec-lender-0123456789abcdef"
        #expect(await world.run(["webhooks", "check", "--url", Self.publicURL]) == 1)
        #expect(world.cli.standardOutput.contains("no webhook delivers to \(Self.publicURL)"))
        #expect(world.cli.standardOutput.contains("BOOKWATCH_WEBHOOK_SECRET is not set"))

        #expect(await world.run(["webhooks", "register", "--url", Self.publicURL, "--events", "book.verified,document.upload_succeeded"]) == 0)
        #expect(await world.run(["webhooks", "check", "--json"], ["BOOKWATCH_PUBLIC_URL": Self.publicURL, "BOOKWATCH_WEBHOOK_SECRET": secret]) == 1)
        let report = try JSONSerialization.jsonObject(with: Data(world.cli.standardOutput.utf8)) as? [String: Any]
        #expect(report?["ok"] as? Bool == false)
        let problems = ((report?["gaps"] as? [[String: Any]]) ?? []).compactMap { $0["problem"] as? String }
        #expect(problems.count == 4)  // three events missing, no secret at Ocrolus
        for name in ["document.verification_succeeded", "book.completed", "book.analytics_v2.generated"] {
            #expect(problems.contains { $0.hasPrefix("\(name) is not subscribed") })
        }
        #expect(problems.contains { $0.contains("no signing secret is set at Ocrolus") })

        world.serveSecrets.withLock { $0 = [secret] }
        #expect(await world.run(["webhooks", "update", "1", "--events", WebhookSubscription.defaultEventNames.joined(separator: ",")]) == 0)
        let file = world.cli.directory + "/new.secret"
        try secret.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(await world.run(["webhooks", "rotate-secret", "1", "--secret-file", file]) == 0)
        #expect(await world.run(["webhooks", "check"], ["BOOKWATCH_PUBLIC_URL": Self.publicURL, "BOOKWATCH_WEBHOOK_SECRET": secret]) == 0)
        #expect(world.cli.standardOutput.hasPrefix("ok: webhook 1"))
    }

    @Test func rotateSecretRefusesUntilServeAcceptsTheNewSecretThenRotates() async throws {
        let world = try World()
        #expect(await world.run(["webhooks", "register", "--url", Self.publicURL]) == 0)
        #expect(await world.run(["webhooks", "rotate-secret", "1"]) == 2)  // neither a file nor --show-secret

        // Step 1: a new secret is generated into the file (0600); serve answers without it: refused.
        let file = world.cli.directory + "/rotation.secret"
        world.serveSecrets.withLock { $0 = ["whsec-old-0123456789abcdef"] }
        #expect(await world.run(["webhooks", "rotate-secret", "1", "--secret-file", file]) == 1)
        let secret = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.count == 64)
        #expect(secret.allSatisfy { $0.isHexDigit })
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(world.cli.standardError.contains("does not accept it yet"))
        #expect(!world.cli.standardError.contains(secret))
        #expect(await world.registration(1)?.secret == nil)

        // Serve not answering, and the configuration given does not list it either: refused.
        world.serveSecrets.withLock { $0 = nil }
        #expect(await world.run(["webhooks", "rotate-secret", "1", "--secret-file", file]) == 1)
        #expect(await world.registration(1)?.secret == nil)

        // Step 2: serve accepts old and new: rotated at Ocrolus, the secret never printed.
        world.serveSecrets.withLock { $0 = ["whsec-old-0123456789abcdef", secret] }
        #expect(await world.run(["webhooks", "rotate-secret", "1", "--secret-file", file, "--json"]) == 0)
        #expect(await world.registration(1)?.secret == secret)
        #expect(!world.cli.standardOutput.contains(secret))
        let outcome = try JSONSerialization.jsonObject(with: Data(world.cli.standardOutput.utf8)) as? [String: Any]
        #expect(outcome?["fingerprint"] as? String == WebhookVerifier.fingerprint(secret))
        #expect(outcome?["old_secret_removable_after"] as? String == BookStatusEntry.rfc3339(world.cli.now.addingTimeInterval(1800)))
        #expect(outcome?["secret"] == nil)
    }

    @Test func rotateSecretFallsBackToTheConfigurationGivenAndShowsTheSecretOnlyWhenAsked() async throws {
        let world = try World()
        #expect(await world.run(["webhooks", "register", "--url", Self.publicURL]) == 0)
        let secret = "whsec-configured-0123456789"
        let file = world.cli.directory + "/given.secret"
        try secret.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(
            await world.run(
                ["webhooks", "rotate-secret", "1", "--secret-file", file, "--show-secret"],
                ["BOOKWATCH_WEBHOOK_SECRET": "whsec-old-0123456789abcdef,\(secret)"]
            ) == 0
        )
        #expect(world.cli.standardOutput.contains("the configuration given"))
        #expect(world.cli.standardOutput.contains("secret: \(secret)"))
        #expect(await world.registration(1)?.secret == secret)

        // A file that holds no usable secret is a usage error, and nothing is rotated.
        try "short".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(await world.run(["webhooks", "rotate-secret", "1", "--secret-file", file]) == 2)
        #expect(await world.registration(1)?.secret == secret)
    }

    @Test func rotateSecretNeedsEveryReplicaNamedToAcceptIt() async throws {
        let world = try World()
        #expect(await world.run(["webhooks", "register", "--url", Self.publicURL]) == 0)
        let secret = "whsec-replicas-0123456789"
        let file = world.cli.directory + "/r.secret"
        try secret.write(toFile: file, atomically: true, encoding: .utf8)
        let both = ["webhooks", "rotate-secret", "1", "--secret-file", file, "--service", "http://serve-a:9090", "--service", "http://serve-b:9090"]
        world.serveSecrets.withLock { $0 = [secret] }
        world.replicaSecrets.withLock { $0 = ["whsec-old-0123456789abcdef"] }
        #expect(await world.run(both) == 1)
        #expect(world.cli.standardError.contains("serve at http://serve-b:9090 does not accept it yet"))
        world.replicaSecrets.withLock { $0 = nil }  // one replica silent: not known to accept it
        #expect(await world.run(both) == 1)
        #expect(world.cli.standardError.contains("did not answer at http://serve-b:9090"))
        #expect(await world.registration(1)?.secret == nil)
        world.replicaSecrets.withLock { $0 = ["whsec-old-0123456789abcdef", secret] }
        #expect(await world.run(both) == 0)
        #expect(await world.registration(1)?.secret == secret)
    }

    @Test func aPasswordInTheWebhookURLIsNeverPrinted() async throws {
        let world = try World()
        let url = "https://lender:hunter2-basic@bookwatch.example.com/webhooks/ocrolus"
        #expect(await world.run(["webhooks", "register", "--url", url]) == 0)
        #expect(!world.cli.standardError.contains("hunter2"))
        for arguments in [["webhooks", "list"], ["webhooks", "list", "--json"], ["webhooks", "show", "1"], ["webhooks", "show", "1", "--json"]] {
            #expect(await world.run(arguments) == 0)
            #expect(!world.cli.standardOutput.contains("hunter2"), "\(arguments)")
            #expect(world.cli.standardOutput.contains("lender:***@") || world.cli.standardOutput.contains("lender:%2A%2A%2A@"), "\(arguments)")
        }
        #expect(await world.run(["webhooks", "check", "--url", Self.publicURL]) == 1)
        #expect(!world.cli.standardOutput.contains("hunter2"))
    }

    @Test func testReportsWhetherTheServiceStoredTheTestDelivery() async throws {
        let world = try World()
        let secret = "whsec-lender-0123456789abcdef"
        #expect(await world.run(["webhooks", "register", "--url", Self.publicURL]) == 0)
        world.serveSecrets.withLock { $0 = [secret] }
        let file = world.cli.directory + "/s.secret"
        try secret.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(await world.run(["webhooks", "rotate-secret", "1", "--secret-file", file]) == 0)
        // The database exists (serve created it), and holds a delivery from before the test.
        let store = try SQLiteBookStore(path: world.cli.databasePath)
        let admission = WebhookAdmission(verifier: try WebhookVerifier(secrets: [secret]))
        _ = try await store.appendToInbox(
            InboxDelivery(
                requestID: "earlier",
                receivedAt: world.clock.now(),
                bookUUID: nil,
                bookPK: 0,
                event: "document.status",
                body: [],
                authenticated: true
            )
        )
        try await store.close()

        // The service, while the command waits: deliveries due are admitted as serve admits them.
        let simulation = world.simulation
        let clock = world.clock
        let path = world.cli.databasePath
        let deliver: @Sendable (TimeInterval) async throws -> Void = { _ in
            let store = try SQLiteBookStore(path: path)
            for delivery in await simulation.takeDueDeliveries() {
                let header: (String) -> String? = { name in delivery.headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1 }
                guard case .store(let row, _) = admission.admit(body: delivery.body, header: header, client: nil, now: clock.now()) else {
                    await simulation.recordAnswer(delivery, status: 401)
                    continue
                }
                _ = try await store.appendToInbox(row)
                await simulation.recordAnswer(delivery, status: 200)
            }
            try await store.close()
        }
        #expect(await world.run(["webhooks", "test", "1", "--json"], sleep: deliver) == 0)
        let outcome = try JSONSerialization.jsonObject(with: Data(world.cli.standardOutput.utf8)) as? [String: Any]
        #expect(outcome?["stored"] as? Bool == true)
        #expect(outcome?["signature_verified"] as? Bool == true)
        #expect((outcome?["request_id"] as? String).map { $0 != "earlier" } == true)

        // What Ocrolus reports it delivered: the test, answered 200.
        #expect(await world.run(["webhooks", "events", "1", "--json"]) == 0)
        let reports = try JSONDecoder().decode([WebhookDeliveryReport].self, from: Data(world.cli.standardOutput.utf8))
        #expect(reports.map(\.eventName) == ["test"])
        #expect(reports.map(\.httpStatus) == [200])

        // Nothing arrives (the service is down): exit 1 after the wait, naming where to look.
        let waits = Mutex(0)
        #expect(await world.run(["webhooks", "test", "1", "--wait", "3"], sleep: { _ in waits.withLock { $0 += 1 } }) == 1)
        #expect(waits.withLock { $0 } == 3)
        #expect(world.cli.standardError.contains("no test delivery was stored within 3 s"))
    }

    @Test func serveChecksTheSetupOnceAtStartupAndCarriesOnWhenItCannot() async throws {
        let world = try World()
        func client(_ transport: any HTTPTransport) -> OcrolusClient {
            OcrolusClient(
                configuration: OcrolusConfiguration(
                    apiBaseURL: "http://simulator",
                    tokenURL: "http://simulator/oauth/token",
                    credentials: .init(clientID: "lender", clientSecret: "lender-secret-0123456789")
                ),
                transport: transport,
                limiter: RateLimiter(rate: 100, burst: 100, clock: world.clock),
                clock: world.clock
            )
        }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        #expect(await world.run(["webhooks", "register", "--url", Self.publicURL, "--events", "book.verified"]) == 0)
        let report = WebhookSetupReport(client: client(world.transport), publicURL: Self.publicURL, secretConfigured: true, logger: logger)
        let check = try #require(await report.report())
        #expect(check.serving.map(\.id) == ["1"])
        #expect(check.gaps.count == 5)  // four events, and no secret at Ocrolus

        struct Down: HTTPTransport {
            func send(_ request: OutgoingRequest) async throws -> IncomingResponse { throw URLError(.cannotConnectToHost) }
        }
        let unreachable = WebhookSetupReport(client: client(Down()), publicURL: Self.publicURL, secretConfigured: true, logger: logger)
        #expect(await unreachable.report() == nil)
    }

    @Test func testWithoutADatabaseIsAUsageError() async throws {
        let world = try World()
        #expect(await world.run(["webhooks", "test", "1"]) == 2)
        #expect(world.cli.standardError.contains("no database there"))
    }
}
