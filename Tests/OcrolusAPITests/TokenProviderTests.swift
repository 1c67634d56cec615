import BookWatchClocks
import BookWatchCore
import Foundation
import Synchronization
import Testing

@testable import OcrolusAPI

/// A transport answering token requests, holding each answer until `release()` when gated.
final class FakeTokenTransport: HTTPTransport {
    struct ClientCancelled: Error {}
    let requests = Mutex<[OutgoingRequest]>([])
    let status: Int
    let expiresIn: Int
    private let gate = Mutex<[CheckedContinuation<Void, Never>]>([])
    let gated: Bool

    init(status: Int = 200, expiresIn: Int = 3600, gated: Bool = false) {
        self.status = status
        self.expiresIn = expiresIn
        self.gated = gated
    }

    var pending: Int { gate.withLock { $0.count } }

    func release() {
        let waiting = gate.withLock { state in
            defer { state.removeAll() }
            return state
        }
        for continuation in waiting { continuation.resume() }
    }

    func send(_ request: OutgoingRequest) async throws -> IncomingResponse {
        let n = requests.withLock {
            $0.append(request)
            return $0.count
        }
        if gated { await withCheckedContinuation { continuation in gate.withLock { $0.append(continuation) } } }
        // As AsyncHTTPClient does: a cancelled request fails with the client's own error, not a
        // `CancellationError` (the provider must recognise it by the task's cancellation).
        if Task.isCancelled { throw ClientCancelled() }
        if status != 200 {
            return IncomingResponse(status: status, body: Array(#"{"error":"invalid_client","error_description":"bad credentials"}"#.utf8))
        }
        return IncomingResponse(status: 200, body: Array(#"{"access_token":"token-\#(n)","token_type":"Bearer","expires_in":\#(expiresIn)}"#.utf8))
    }
}

@Suite struct TokenProviderTests {
    let credentials = TokenProvider.Credentials(clientID: "client-1", clientSecret: "s3cret-value")

    @Test func oneRefreshInFlightHoweverManyCallersWait() async throws {
        let clock = ManualClock()
        let transport = FakeTokenTransport(gated: true)
        let provider = TokenProvider(
            tokenURL: "http://auth/oauth/token",
            credentials: credentials,
            transport: transport,
            limiter: nil,
            clock: clock
        )
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<50 { group.addTask { try await provider.token() } }
            while transport.pending == 0 { await Task.yield() }
            // Let every caller reach the provider while the one request is held.
            for _ in 0..<200 { await Task.yield() }
            transport.release()
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(tokens) == ["token-1"])
        #expect(transport.requests.withLock { $0.count } == 1)
        let body = try #require(transport.requests.withLock { $0.first?.body })
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: String])
        #expect(json == ["grant_type": "client_credentials", "client_id": "client-1", "client_secret": "s3cret-value"])
    }

    /// One caller's cancellation (a shutdown, a cancelled poll) is its own: a caller waiting on
    /// its fetch fetches instead of failing with it.
    @Test func aCancelledFetcherLeavesTheFetchToAWaiter() async throws {
        let transport = FakeTokenTransport(gated: true)
        let provider = TokenProvider(
            tokenURL: "http://auth/oauth/token",
            credentials: credentials,
            transport: transport,
            limiter: nil,
            clock: ManualClock()
        )
        let fetcher = Task { try await provider.token() }
        while transport.pending == 0 { await Task.yield() }
        let waiter = Task { try await provider.token() }
        while provider.waitingCount.load(ordering: .relaxed) == 0 { await Task.yield() }
        fetcher.cancel()
        transport.release()  // the fetcher's request ends in its cancellation
        while transport.pending == 0 { await Task.yield() }  // the waiter's own request
        transport.release()
        #expect(try await waiter.value == "token-2")
        await #expect(throws: (any Error).self) { try await fetcher.value }
        #expect(provider.waitingCount.load(ordering: .relaxed) == 0)
    }

    @Test func cachedUntilHalfItsLifetimeThenRefreshed() async throws {
        let clock = ManualClock()
        let transport = FakeTokenTransport(expiresIn: 3600)
        let provider = TokenProvider(
            tokenURL: "http://auth/oauth/token",
            credentials: credentials,
            transport: transport,
            limiter: nil,
            clock: clock
        )
        #expect(try await provider.token() == "token-1")
        clock.advance(by: 1799)
        #expect(try await provider.token() == "token-1")
        clock.advance(by: 1)
        #expect(try await provider.token() == "token-2")
        await provider.invalidate("token-1")  // stale: no effect
        #expect(try await provider.token() == "token-2")
        await provider.invalidate("token-2")
        #expect(try await provider.token() == "token-3")
    }

    /// An absurd `expires_in` is believed up to 30 days (it trapped before): refreshed at 15.
    @Test func anAbsurdLifetimeIsCappedAtThirtyDays() async throws {
        let clock = ManualClock()
        let provider = TokenProvider(
            tokenURL: "http://auth/oauth/token",
            credentials: credentials,
            transport: FakeTokenTransport(expiresIn: Int.max),
            limiter: nil,
            clock: clock
        )
        #expect(try await provider.token() == "token-1")
        clock.advance(by: 15 * 86_400 - 1)
        #expect(try await provider.token() == "token-1")
        clock.advance(by: 1)
        #expect(try await provider.token() == "token-2")
    }

    @Test func refusedCredentialsAreUnauthorizedWithoutTheSecret() async throws {
        let records = Mutex<[RequestRecord]>([])
        let provider = TokenProvider(
            tokenURL: "http://auth/oauth/token",
            credentials: credentials,
            transport: FakeTokenTransport(status: 401),
            limiter: nil,
            clock: ManualClock(),
            observe: { record in records.withLock { $0.append(record) } }
        )
        let error = await #expect(throws: OcrolusError.self) { try await provider.token() }
        #expect(error?.kind == .unauthorized)
        // The refusal is counted where the runbook looks for it (docs/operations.md).
        #expect(records.withLock { $0.map { "\($0.endpoint) \($0.status)" } } == ["token 401"])
        #expect(error?.description.contains("bad credentials") == true)
        #expect(error?.description.contains("s3cret-value") == false)
        #expect(credentials.description.contains("s3cret") == false)
    }
}

/// A request cancelled in flight (shutdown) ends in a `CancellationError`, whatever error the HTTP
/// client reports for it, so no caller counts it as a failed call.
@Suite struct ClientCancellationTests {
    /// Answers token requests; holds every other request until cancelled, then fails it with an
    /// error of its own, as AsyncHTTPClient does.
    final class HangingAPI: HTTPTransport {
        struct Cancelled: Error {}
        let held = Mutex<[CheckedContinuation<Void, Never>]>([])

        func send(_ request: OutgoingRequest) async throws -> IncomingResponse {
            if request.url.hasSuffix("/token") {
                return IncomingResponse(status: 200, body: Array(#"{"access_token":"t","token_type":"Bearer","expires_in":3600}"#.utf8))
            }
            await withCheckedContinuation { continuation in held.withLock { $0.append(continuation) } }
            throw Cancelled()
        }

        func release() {
            for continuation in held.withLock({ held in
                defer { held = [] }
                return held
            }) { continuation.resume() }
        }
    }

    /// A status call through a client on `transport`, started in a task of its own.
    static func statusCall(
        through transport: any HTTPTransport,
        observe: @escaping @Sendable (RequestRecord) -> Void = { _ in }
    ) -> Task<BookStatusResult, any Error> {
        let clock = ManualClock()
        let client = OcrolusClient(
            configuration: OcrolusConfiguration(
                apiBaseURL: "http://api",
                tokenURL: "http://auth/token",
                credentials: .init(clientID: "c", clientSecret: "s")
            ),
            transport: transport,
            limiter: RateLimiter(rate: 100, burst: 100, clock: clock),
            clock: clock,
            observe: observe
        )
        return Task { try await client.bookStatus(uuid: BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!, priority: .background) }
    }

    @Test func aRequestCancelledInFlightIsACancellationNotAFailure() async throws {
        let api = HangingAPI()
        let records = Mutex<[RequestRecord]>([])
        let call = Self.statusCall(through: api) { record in records.withLock { $0.append(record) } }
        for _ in 0..<2000 where api.held.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(1)) }
        try #require(!api.held.withLock { $0.isEmpty })
        call.cancel()
        api.release()
        await #expect(throws: CancellationError.self) { try await call.value }
        // Recorded: it took a slot and may have reached Ocrolus; as cut short, not as an error.
        // The token request before it is recorded too.
        #expect(records.withLock { $0.map { "\($0.endpoint) \($0.status) \($0.codeLabel)" } } == ["token 200 200", "book_status 0 cancelled"])
    }

    /// The same for the token request that goes first: cut short, it is a cancellation, not a
    /// failed token fetch.
    @Test func aTokenFetchCancelledInFlightIsACancellation() async throws {
        let tokens = FakeTokenTransport(gated: true)
        let records = Mutex<[RequestRecord]>([])
        let call = Self.statusCall(through: tokens) { record in records.withLock { $0.append(record) } }
        for _ in 0..<2000 where tokens.pending == 0 { try await Task.sleep(for: .milliseconds(1)) }
        try #require(tokens.pending == 1)
        call.cancel()
        tokens.release()
        await #expect(throws: CancellationError.self) { try await call.value }
        #expect(records.withLock { $0.map { "\($0.endpoint) \($0.codeLabel)" } } == ["token cancelled"])
    }
}
