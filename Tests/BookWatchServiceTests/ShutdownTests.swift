import BookWatchClocks
import BookWatchCore
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import ServiceLifecycle
import Testing

/// SIGTERM must end `serve` cleanly: every service of the group finishes without an error when
/// graceful shutdown interrupts its sleep (a `CancellationError` from a sleep used to cancel the
/// whole group, and the inbox writer then waited forever).
@Suite struct ShutdownTests {
    struct UnreachableAPI: HTTPTransport {
        func send(_ request: OutgoingRequest) async throws -> IncomingResponse {
            IncomingResponse(status: 503, headers: [], body: [])
        }
    }

    @Test func gracefulShutdownOfEveryServeServiceEndsWithoutAnError() async throws {
        let h = try IngressHarness()
        let logger = quietLogger
        let clock = SystemClock()
        _ = try await h.store.apply(
            .command(.track(.operator)),
            to: BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!,
            at: clock.now(),
            options: .init()
        )
        let client = OcrolusClient(
            configuration: OcrolusConfiguration(
                apiBaseURL: "http://ocrolus.invalid",
                tokenURL: "http://ocrolus.invalid/token",
                credentials: .init(clientID: "c", clientSecret: "s")
            ),
            transport: UnreachableAPI(),
            limiter: RateLimiter(rate: 5, burst: 5, clock: clock),
            clock: clock,
            logger: logger
        )
        let watcher = h.watcher(client: client, clock: clock)
        let services: [any Service] = [
            h.writer, DatabaseProbe(store: h.store, health: h.health, clock: clock, logger: logger),
            WatcherService(watcher: watcher, clock: clock),
        ]
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Let the loops reach their sleeps (a poll fails against the 503 API and is deferred).
            for _ in 0..<200 { await Task.yield() }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()  // throws if any service ended with an error
        }
    }
}

/// Under a backlog a step returns after its limit (the service loop comes straight back; a
/// virtual-time run can stop at its deadline instead of polling forever).
@Suite struct WatcherStepLimitTests {
    @Test func pollDueStopsAtItsLimitWhileMoreAreDue() async throws {
        let h = try IngressHarness()
        let logger = quietLogger
        let clock = ManualClock(start: h.clock.now())
        for index in 0..<40 {
            let uuid = BookUUID(String(format: "09c52985-2f05-4022-a738-%012d", index))!
            _ = try await h.store.apply(.command(.track(.operator)), to: uuid, at: clock.now(), options: .init())
        }
        let client = OcrolusClient(
            configuration: OcrolusConfiguration(
                apiBaseURL: "http://ocrolus.invalid",
                tokenURL: "http://ocrolus.invalid/token",
                credentials: .init(clientID: "c", clientSecret: "s")
            ),
            transport: ShutdownTests.UnreachableAPI(),
            limiter: RateLimiter(rate: 1000, burst: 1000, clock: clock),
            clock: clock,
            logger: logger
        )
        let watcher = h.watcher(client: client, clock: clock)
        #expect(try await watcher.pollDue(limit: 16) == 16)
        #expect(try await watcher.pollDue(limit: 100) == 24)  // the rest; failed polls are deferred, not due again now
        #expect(try await watcher.pollDue(limit: 100) == 0)
    }
}
