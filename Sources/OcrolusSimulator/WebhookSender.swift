import AsyncHTTPClient
import BookWatchClocks
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import OcrolusAPI
import ServiceLifecycle
import Synchronization

/// Where simulated webhooks go: an HTTP endpoint, or a closure in tests.
public protocol WebhookTarget: Sendable {
    /// Delivers one attempt; returns the HTTP status, or nil when there was no answer in time.
    func deliver(_ delivery: WebhookDelivery, to url: String?) async -> Int?
}

/// Posts deliveries over HTTP with AsyncHTTPClient, as Ocrolus does (time-out counts as failure).
public struct HTTPWebhookTarget: WebhookTarget {
    /// Where deliveries go unless a registration names another URL.
    public let url: String
    let client: HTTPClient
    let timeout: TimeInterval

    /// A target posting to `url`, failing an attempt not answered within `timeout`.
    public init(url: String, client: HTTPClient = .shared, timeout: TimeInterval = 5) {
        self.url = url
        self.client = client
        self.timeout = timeout
    }

    /// Posts one attempt; the HTTP status, or nil without an answer in time.
    public func deliver(_ delivery: WebhookDelivery, to url: String?) async -> Int? {
        var request = HTTPClientRequest(url: url ?? self.url)
        request.method = .POST
        for (name, value) in delivery.headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: delivery.body))
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            _ = try? await response.body.collect(upTo: 1 << 16)
            return Int(response.status.code)
        } catch {
            return nil
        }
    }
}

/// Spreads attempts over several endpoints in turn, as a load balancer in front of replicas does:
/// a retry goes to the next one, so a dead replica costs a delivery one attempt, not the event.
public final class SpreadWebhookTarget: WebhookTarget {
    /// The endpoints, taken in turn.
    public let targets: [HTTPWebhookTarget]
    private let next = Mutex(0)

    /// A target spreading attempts over `urls`.
    public init(urls: [String], client: HTTPClient = .shared, timeout: TimeInterval = 5) {
        precondition(!urls.isEmpty, "at least one URL")
        targets = urls.map { HTTPWebhookTarget(url: $0, client: client, timeout: timeout) }
    }

    /// Posts one attempt to the next endpoint in turn.
    public func deliver(_ delivery: WebhookDelivery, to url: String?) async -> Int? {
        let index = next.withLock { value in
            defer { value += 1 }
            return value % targets.count
        }
        return await targets[index].deliver(delivery, to: url)
    }
}

/// Posts only deliveries of webhooks registered through the management API, to their URLs: the
/// target of a simulator started without a webhook URL (it has no deliveries of its own then).
public struct RegisteredOnlyWebhookTarget: WebhookTarget {
    let http: HTTPWebhookTarget

    /// A target that fails an attempt not answered within `timeout`.
    public init(client: HTTPClient = .shared, timeout: TimeInterval = 5) {
        http = HTTPWebhookTarget(url: "", client: client, timeout: timeout)
    }

    /// Posts to the registration's URL; nothing (no answer) for a delivery without one.
    public func deliver(_ delivery: WebhookDelivery, to url: String?) async -> Int? {
        guard let url else { return nil }
        return await http.deliver(delivery, to: url)
    }
}

/// A closure as a target (in-process tests and the demo).
public struct ClosureWebhookTarget: WebhookTarget {
    let body: @Sendable (WebhookDelivery) async -> Int?
    /// A target that hands each attempt to `body`.
    public init(_ body: @escaping @Sendable (WebhookDelivery) async -> Int?) { self.body = body }
    /// Hands the attempt to the closure.
    public func deliver(_ delivery: WebhookDelivery, to url: String?) async -> Int? { await body(delivery) }
}

/// Sends the simulation's due webhooks to a target and records each answer (retries follow).
public struct WebhookSender: Service {
    /// The simulation whose deliveries it sends.
    public let simulation: OcrolusSimulation
    /// Where they go.
    public let target: any WebhookTarget
    let logger: Logger

    /// A sender of `simulation`'s due deliveries to `target`.
    public init(simulation: OcrolusSimulation, target: any WebhookTarget, logger: Logger = Logger(label: "ocrolus-sim.webhooks")) {
        self.simulation = simulation
        self.target = target
        self.logger = logger
    }

    /// Delivers everything due now, concurrently; returns how many attempts were made.
    @discardableResult
    public func deliverDue() async -> Int {
        let due = await simulation.takeDueDeliveries()
        guard !due.isEmpty else { return 0 }
        let registrations = Dictionary(uniqueKeysWithValues: await simulation.registeredWebhooks().map { ($0.id, $0.url) })
        await withTaskGroup(of: Void.self) { group in
            for delivery in due {
                group.addTask {
                    let url = delivery.registrationID.flatMap { registrations[$0] }
                    // A registration deleted meanwhile gets nothing more (Ocrolus stops delivering).
                    if delivery.registrationID != nil && url == nil { return }
                    let status = await target.deliver(delivery, to: url)
                    await simulation.recordAnswer(delivery, status: status)
                }
            }
        }
        return due.count
    }

    /// Delivers webhooks as their time comes, until cancelled or shut down gracefully.
    public func run() async throws {
        let clock = simulation.clock
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await deliverDue()
                let now = clock.now()
                let next = await simulation.nextWebhookDueAt() ?? now.addingTimeInterval(1)
                try await clock.sleep(until: min(max(next, now), now.addingTimeInterval(1)))
            }
        }
    }
}

/// The simulator as an `HTTPTransport`, without sockets: the client talks to it in-process.
public struct SimulatorTransport: HTTPTransport {
    /// The simulation answering.
    public let simulation: OcrolusSimulation
    private let unanswered = Counter()
    /// A transport answered by `simulation`.
    public init(simulation: OcrolusSimulation) { self.simulation = simulation }

    /// Requests sent whose answer has not come back from the simulation's actor (the delay of a
    /// late answer excluded): a virtual clock must not move while one is on its way, or the
    /// simulation would date it later than it was sent.
    public var arriving: Int { unanswered.value.load(ordering: .acquiring) }

    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Answers the request in-process (late, when the faults say so).
    public func send(_ request: OutgoingRequest) async throws -> IncomingResponse {
        unanswered.value.add(1, ordering: .acquiringAndReleasing)
        let (response, delay) = await {
            defer { unanswered.value.subtract(1, ordering: .acquiringAndReleasing) }
            return await simulation.handleDelayed(request)
        }()
        if delay > 0 { try await simulation.clock.sleep(for: delay) }
        return response
    }
}
