import BookWatchClocks
import Foundation
import Logging
import Synchronization

/// OAuth2 client-credentials tokens for the Ocrolus API: cached, refreshed at half their
/// lifetime (Ocrolus suggests every 12 h for 24 h tokens) and when a 401 says so, with at most one
/// refresh in flight however many callers wait.
public actor TokenProvider {
    /// The API client id and secret (the secret never printed).
    public struct Credentials: Sendable, CustomStringConvertible {
        /// The client id (`OCROLUS_CLIENT_ID`).
        public var clientID: String
        /// The client secret (`OCROLUS_CLIENT_SECRET`).
        public var clientSecret: String
        /// Credentials.
        public init(clientID: String, clientSecret: String) {
            self.clientID = clientID
            self.clientSecret = clientSecret
        }
        /// Never prints the secret.
        public var description: String { "client \(clientID) (secret redacted)" }
    }

    struct CachedToken: Sendable {
        var value: String
        var refreshAt: Date
        var expiresAt: Date
    }

    private let tokenURL: String
    private let credentials: Credentials
    private let transport: any HTTPTransport
    private let limiter: RateLimiter?
    private let clock: any WallClock
    private let logger: Logger
    private let observe: @Sendable (RequestRecord) -> Void
    private var cached: CachedToken?
    /// Whether a caller is fetching a token now; the others wait in `waiters` for its result.
    private var fetching = false
    private var waiters: [CheckedContinuation<Wake, Never>] = []
    private enum Wake {
        case done(Result<CachedToken, any Error>)
        /// The fetching caller was cancelled: try again yourself.
        case retry
    }
    /// Callers waiting for a fetch another caller makes: a deterministic scheduler counts them as
    /// blocked (the fetching caller itself waits in the limiter or the transport).
    public nonisolated let waitingCount = Atomic<Int>(0)
    /// Told after every change of `waitingCount`.
    private nonisolated let onWaitingChange: @Sendable () -> Void
    /// Tokens fetched so far (for tests and metrics).
    public private(set) var fetchCount = 0

    /// A cache of tokens from `tokenURL` for `credentials`; each token request is reported to
    /// `observe` (endpoint `token`), as the client reports its own.
    public init(
        tokenURL: String,
        credentials: Credentials,
        transport: any HTTPTransport,
        limiter: RateLimiter?,
        clock: any WallClock,
        logger: Logger = Logger(label: "bookwatch.token"),
        observe: @escaping @Sendable (RequestRecord) -> Void = { _ in },
        onWaitingChange: @escaping @Sendable () -> Void = {}
    ) {
        self.onWaitingChange = onWaitingChange
        self.tokenURL = tokenURL
        self.credentials = credentials
        self.transport = transport
        self.limiter = limiter
        self.clock = clock
        self.logger = logger
        self.observe = observe
    }

    /// A valid access token, fetching one when none is cached or the cached one is due for refresh.
    public func token() async throws -> String {
        if let cached, clock.now() < cached.refreshAt { return cached.value }
        return try await refresh().value
    }

    /// Forgets `token` after the API refused it (401); the next `token()` fetches a new one.
    public func invalidate(_ token: String) {
        if cached?.value == token { cached = nil }
    }

    /// One fetch at a time, made by the first caller in its own task (so its waits are its
    /// own); later callers wait for its result.
    private func refresh() async throws -> CachedToken {
        while fetching {
            let wake = await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
                waiters.append(continuation)
                waitingCount.add(1, ordering: .relaxed)
                onWaitingChange()
            }
            switch wake {
            case .done(let result): return try result.get()
            case .retry:
                try Task.checkCancellation()
                if let cached, clock.now() < cached.refreshAt { return cached }
            }
        }
        fetching = true
        let result: Result<CachedToken, any Error>
        do {
            result = .success(try await fetch())
        } catch {
            result = .failure(error)
        }
        fetching = false
        if case .success(let token) = result { cached = token }
        let woken = waiters
        waiters = []
        waitingCount.subtract(woken.count, ordering: .relaxed)
        if !woken.isEmpty { onWaitingChange() }
        // The fetching caller was cancelled (its error may wrap the cancellation): the waiters
        // are not, and one of them fetches instead.
        let cancelled = if case .failure = result { Task.isCancelled } else { false }
        for waiter in woken { waiter.resume(returning: cancelled ? .retry : .done(result)) }
        return try result.get()
    }

    private func fetch() async throws -> CachedToken {
        let waited = try await limiter?.acquire(.urgent) ?? 0
        fetchCount += 1
        let body: [String: String] = [
            "grant_type": "client_credentials", "client_id": credentials.clientID, "client_secret": credentials.clientSecret,
        ]
        let request = OutgoingRequest(
            method: "POST",
            url: tokenURL,
            headers: [("Content-Type", "application/json"), ("Accept", "application/json")],
            body: Array(try JSONEncoder().encode(body)),
            timeout: 30
        )
        let response: IncomingResponse
        let started = clock.now()
        do {
            response = try await transport.send(request)
        } catch {
            // Cancelled (shutdown): not a failed fetch; callers stop on a `CancellationError`.
            let cancelled = error is CancellationError || Task.isCancelled
            observe(
                RequestRecord(
                    endpoint: "token",
                    status: 0,
                    seconds: clock.now().timeIntervalSince(started),
                    limiterWaitSeconds: waited,
                    cancelled: cancelled
                )
            )
            if cancelled { throw CancellationError() }
            throw OcrolusError(.transient, endpoint: "token", message: "token request failed: \(error)")
        }
        observe(
            RequestRecord(endpoint: "token", status: response.status, seconds: clock.now().timeIntervalSince(started), limiterWaitSeconds: waited)
        )
        let retryAfter = RetryAfter.parse(response.header("Retry-After"), now: clock.now())
        switch response.status {
        case 200:
            break
        case 400, 401, 403:
            let detail =
                (try? JSONDecoder().decode(TokenError.self, from: Data(response.body)))
                .map { [$0.error, $0.errorDescription].compactMap { $0 }.joined(separator: ": ") } ?? ""
            throw OcrolusError(
                .unauthorized,
                endpoint: "token",
                httpStatus: response.status,
                message: "the token endpoint refused \(credentials)\(detail.isEmpty ? "" : ": \(detail)")"
            )
        default:
            if response.status == 429 { await limiter?.penalize(retryAfter: retryAfter) }
            throw OcrolusError.classify(
                endpoint: "token",
                httpStatus: response.status,
                code: nil,
                message: "token endpoint answered \(response.status)",
                retryAfter: retryAfter
            )
        }
        guard let answer = try? JSONDecoder().decode(TokenAnswer.self, from: Data(response.body)), !answer.accessToken.isEmpty
        else {
            throw OcrolusError(.transient, endpoint: "token", httpStatus: 200, message: "unreadable token answer")
        }
        // At most 30 days, whatever the answer says (an `expires_in` near `Int.max` trapped the
        // log line's conversion back to an integer); refreshed at half of it, and on any 401.
        let lifetime = TimeInterval(min(max(answer.expiresIn ?? 86_400, 1), Self.longestLifetime))
        let now = clock.now()
        logger.info("obtained API token", metadata: ["expires_in_s": "\(Int(lifetime))"])
        return CachedToken(
            value: answer.accessToken,
            refreshAt: now.addingTimeInterval(lifetime / 2),
            expiresAt: now.addingTimeInterval(lifetime)
        )
    }

    /// The longest lifetime believed of a token, in seconds.
    static let longestLifetime = 30 * 86_400

    struct TokenAnswer: Decodable {
        var accessToken: String
        var expiresIn: Int?
        enum CodingKeys: String, CodingKey {
            case accessToken = "access_token"
            case expiresIn = "expires_in"
        }
    }

    struct TokenError: Decodable {
        var error: String?
        var errorDescription: String?
        enum CodingKeys: String, CodingKey {
            case error
            case errorDescription = "error_description"
        }
    }
}
