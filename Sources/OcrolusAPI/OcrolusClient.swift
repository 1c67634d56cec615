import BookWatchClocks
import BookWatchCore
import Foundation
import Logging

/// What bookwatch asks of Ocrolus. `OcrolusClient` is the real one; tests may supply others.
public protocol OcrolusAPIClient: Sendable {
    func bookStatus(uuid: BookUUID, priority: RequestPriority) async throws -> BookStatusResult
    func bookStatus(pk: Int, priority: RequestPriority) async throws -> BookStatusResult
    func analytics(uuid: BookUUID, endpoint: AnalyticsEndpoint, priority: RequestPriority) async throws -> AnalyticsAnswer
    /// The same, running `beforeSend` once the rate limiter lets the request go and just before
    /// it is sent (again before a retry after a token refresh); an error it throws cancels the
    /// request. The watcher renews and checks its claim on the job there, so a call that waited
    /// long on a paused limiter is made only by the worker that still owns the job.
    func analytics(
        uuid: BookUUID,
        endpoint: AnalyticsEndpoint,
        priority: RequestPriority,
        beforeSend: @Sendable () async throws -> Void
    ) async throws -> AnalyticsAnswer
    /// One page of a paged endpoint (`AnalyticsEndpoint.isPaged`), as `analytics(...beforeSend:)`.
    func analytics(
        uuid: BookUUID,
        endpoint: AnalyticsEndpoint,
        page: AnalyticsPageRequest,
        priority: RequestPriority,
        beforeSend: @Sendable () async throws -> Void
    ) async throws -> AnalyticsAnswer
}

extension OcrolusAPIClient {
    /// For test doubles that know no pages: the whole answer, whatever the page (a body without
    /// items is the last page, and the watcher stops at a page repeated).
    public func analytics(
        uuid: BookUUID,
        endpoint: AnalyticsEndpoint,
        page: AnalyticsPageRequest,
        priority: RequestPriority,
        beforeSend: @Sendable () async throws -> Void
    ) async throws -> AnalyticsAnswer {
        try await analytics(uuid: uuid, endpoint: endpoint, priority: priority, beforeSend: beforeSend)
    }

    /// For clients without a limiter of their own (test doubles): `beforeSend`, then the call.
    public func analytics(
        uuid: BookUUID,
        endpoint: AnalyticsEndpoint,
        priority: RequestPriority,
        beforeSend: @Sendable () async throws -> Void
    ) async throws -> AnalyticsAnswer {
        try await beforeSend()
        return try await analytics(uuid: uuid, endpoint: endpoint, priority: priority)
    }
}

/// An analytics answer: the body, or "not ready yet" (HTTP 425 / code 9004).
public enum AnalyticsAnswer: Sendable, Equatable {
    case ready([UInt8])
    case notReady(retryAfter: TimeInterval?)
}

/// Where the API lives and how to authenticate.
public struct OcrolusConfiguration: Sendable {
    /// The API base URL (`OCROLUS_API_URL`).
    public var apiBaseURL: String
    /// The OAuth token URL (`OCROLUS_AUTH_URL`).
    public var tokenURL: String
    /// The API client id and secret.
    public var credentials: TokenProvider.Credentials
    /// Longest wait for one answer.
    public var requestTimeout: TimeInterval

    /// The client's settings.
    public init(
        apiBaseURL: String = "https://api.ocrolus.com",
        tokenURL: String = "https://auth.ocrolus.com/oauth/token",
        credentials: TokenProvider.Credentials,
        requestTimeout: TimeInterval = 30
    ) {
        self.apiBaseURL = apiBaseURL.hasSuffix("/") ? String(apiBaseURL.dropLast()) : apiBaseURL
        self.tokenURL = tokenURL
        self.credentials = credentials
        self.requestTimeout = requestTimeout
    }
}

/// One completed request, for metrics: endpoint label, HTTP status (0 = no answer), duration.
public struct RequestRecord: Sendable {
    /// The endpoint label (`book_status`, `analytics/summary`, `token`).
    public var endpoint: String
    /// The HTTP status, 0 when no answer came.
    public var status: Int
    /// How long the request took, the limiter's wait excluded.
    public var seconds: TimeInterval
    /// How long it waited in the rate limiter first.
    public var limiterWaitSeconds: TimeInterval
    /// No answer came because the caller was cancelled (shutdown), not because the call failed.
    public var cancelled: Bool

    /// One completed request.
    public init(endpoint: String, status: Int, seconds: TimeInterval, limiterWaitSeconds: TimeInterval, cancelled: Bool = false) {
        self.endpoint = endpoint
        self.status = status
        self.seconds = seconds
        self.limiterWaitSeconds = limiterWaitSeconds
        self.cancelled = cancelled
    }

    /// The metric's `code` label: the HTTP status; `0` when no answer came; `cancelled` when the
    /// caller stopped waiting (a shutdown cuts requests short: not an error to alert on).
    public var codeLabel: String { cancelled ? "cancelled" : "\(status)" }
}

/// The Ocrolus API client: every call passes the shared `RateLimiter`, carries a cached token
/// (refreshed once on a 401), and turns answers into typed results or `OcrolusError`s.
/// It makes one attempt per call (plus the 401 refresh); callers retry with `RetryPolicy`.
public final class OcrolusClient: OcrolusAPIClient {
    /// Where and as whom it calls.
    public let configuration: OcrolusConfiguration
    /// The rate limiter every call waits in.
    public let limiter: RateLimiter
    /// The OAuth token cache.
    public let tokens: TokenProvider
    private let transport: any HTTPTransport
    let clock: any WallClock
    private let logger: Logger
    private let observe: @Sendable (RequestRecord) -> Void

    /// A client over `transport`, waiting in `limiter`, authenticated by `tokens`
    /// (`onTokenWaitingChange`: `TokenProvider`'s hook for a deterministic scheduler).
    public init(
        configuration: OcrolusConfiguration,
        transport: any HTTPTransport,
        limiter: RateLimiter,
        clock: any WallClock,
        logger: Logger = Logger(label: "bookwatch.ocrolus"),
        observe: @escaping @Sendable (RequestRecord) -> Void = { _ in },
        onTokenWaitingChange: @escaping @Sendable () -> Void = {}
    ) {
        self.configuration = configuration
        self.transport = transport
        self.limiter = limiter
        self.clock = clock
        self.logger = logger
        self.observe = observe
        tokens = TokenProvider(
            tokenURL: configuration.tokenURL,
            credentials: configuration.credentials,
            transport: transport,
            limiter: limiter,
            clock: clock,
            logger: logger,
            observe: observe,
            onWaitingChange: onTokenWaitingChange
        )
    }

    /// The status of a Book by uuid (`GET /v1/book/status`); a gone Book is an answer (`.gone`), not an error.
    /// An answer naming another Book (a misrouted answer, a proxy's cache) is a transient error,
    /// never applied: its documents would read as a reopen of this one.
    public func bookStatus(uuid: BookUUID, priority: RequestPriority) async throws -> BookStatusResult {
        let result = try await bookStatus(query: "book_uuid=\(uuid)", priority: priority)
        if let answered = result.uuid, answered != uuid {
            throw OcrolusError(.transient, endpoint: "book_status", httpStatus: 200, message: "asked for Book \(uuid), answered about \(answered)")
        }
        return result
    }

    /// The status of a Book by pk, for a webhook that names only the pk (an answer naming another
    /// pk is a transient error, as above).
    public func bookStatus(pk: Int, priority: RequestPriority) async throws -> BookStatusResult {
        let result = try await bookStatus(query: "pk=\(pk)", priority: priority)
        if let answered = result.pk, answered != pk {
            throw OcrolusError(
                .transient,
                endpoint: "book_status",
                httpStatus: 200,
                message: "asked for Book pk \(pk), answered about pk \(answered)"
            )
        }
        return result
    }

    private func bookStatus(query: String, priority: RequestPriority) async throws -> BookStatusResult {
        let (response, sentAt) = try await send(method: "GET", path: "/v1/book/status?\(query)", endpoint: "book_status", priority: priority)
        let retryAfter = RetryAfter.parse(response.header("Retry-After"), now: clock.now())
        do {
            var result = try V1Envelope.bookStatus(httpStatus: response.status, body: response.body, retryAfter: retryAfter)
            result.requestedAt = sentAt
            return result
        } catch {
            if error.isRateLimited { await limiter.penalize(retryAfter: retryAfter) }
            throw error
        }
    }

    /// One analytics endpoint of a Book, at `.retrieval` priority unless told.
    public func analytics(
        uuid: BookUUID,
        endpoint: AnalyticsEndpoint,
        priority: RequestPriority = .retrieval
    )
        async throws -> AnalyticsAnswer
    {
        try await analytics(uuid: uuid, endpoint: endpoint, priority: priority, beforeSend: {})
    }

    /// One analytics endpoint of a Book; `beforeSend` runs after the limiter granted the call and just before it is sent (the worker renews its lease there).
    public func analytics(
        uuid: BookUUID,
        endpoint: AnalyticsEndpoint,
        priority: RequestPriority,
        beforeSend: @Sendable () async throws -> Void
    ) async throws -> AnalyticsAnswer {
        try await fetchAnalytics(uuid: uuid, endpoint: endpoint, page: nil, priority: priority, beforeSend: beforeSend)
    }

    /// One page of a paged endpoint; `beforeSend` as above.
    public func analytics(
        uuid: BookUUID,
        endpoint: AnalyticsEndpoint,
        page: AnalyticsPageRequest,
        priority: RequestPriority,
        beforeSend: @Sendable () async throws -> Void
    ) async throws -> AnalyticsAnswer {
        try await fetchAnalytics(uuid: uuid, endpoint: endpoint, page: page, priority: priority, beforeSend: beforeSend)
    }

    private func fetchAnalytics(
        uuid: BookUUID,
        endpoint: AnalyticsEndpoint,
        page: AnalyticsPageRequest?,
        priority: RequestPriority,
        beforeSend: @Sendable () async throws -> Void
    ) async throws -> AnalyticsAnswer {
        let label = "analytics/\(endpoint.rawValue)"
        let path = endpoint.path(for: uuid, page: page)
        let (response, _) = try await send(method: "GET", path: path, endpoint: label, priority: priority, beforeSend: beforeSend)
        let retryAfter = RetryAfter.parse(response.header("Retry-After"), now: clock.now())
        if response.status == 425 { return .notReady(retryAfter: retryAfter) }
        if let error = V1Envelope.declaredError(
            httpStatus: response.status,
            body: response.body,
            endpoint: label,
            retryAfter: retryAfter
        ) {
            if error.code == 9004 { return .notReady(retryAfter: retryAfter) }
            if error.isRateLimited { await limiter.penalize(retryAfter: retryAfter) }
            throw error
        }
        return .ready(response.body)
    }

    /// Limiter, token, request; on a 401 one token refresh and one more try. Answers the response
    /// and when its request was sent.
    func send(
        method: String,
        path: String,
        endpoint: String,
        priority: RequestPriority,
        body: [UInt8]? = nil,
        beforeSend: @Sendable () async throws -> Void = {}
    ) async throws -> (IncomingResponse, Date) {
        var refreshed = false
        while true {
            // The token first: a grant taken before a token fetch (itself a limited call) would
            // send its request later, bunched with the next grants (found by the chaos search).
            let token = try await tokens.token()
            let waited = try await limiter.acquire(priority)
            try await beforeSend()
            var headers = [("Authorization", "Bearer \(token)"), ("Accept", "application/json")]
            if body != nil { headers.append(("Content-Type", "application/json")) }
            let request = OutgoingRequest(
                method: method,
                url: configuration.apiBaseURL + path,
                headers: headers,
                body: body,
                timeout: configuration.requestTimeout
            )
            let started = clock.now()
            let response: IncomingResponse
            do {
                response = try await transport.send(request)
            } catch {
                // Cancelled (shutdown): the caller stopped asking, nothing failed. An HTTP client
                // reports it as its own error; callers tell a `CancellationError` from a failure
                // (an attempt is not counted, a poll is not deferred).
                let cancelled = error is CancellationError || Task.isCancelled
                // Recorded either way (it took a slot and may have reached Ocrolus), status 0.
                observe(
                    RequestRecord(
                        endpoint: endpoint,
                        status: 0,
                        seconds: clock.now().timeIntervalSince(started),
                        limiterWaitSeconds: waited,
                        cancelled: cancelled
                    )
                )
                if cancelled { throw CancellationError() }
                throw OcrolusError(.transient, endpoint: endpoint, message: "request failed: \(error)")
            }
            observe(
                RequestRecord(
                    endpoint: endpoint,
                    status: response.status,
                    seconds: clock.now().timeIntervalSince(started),
                    limiterWaitSeconds: waited
                )
            )
            if response.status == 401 {
                await tokens.invalidate(token)
                if !refreshed {
                    refreshed = true
                    logger.info("API answered 401; refreshing the token once", metadata: ["endpoint": "\(endpoint)"])
                    continue
                }
                throw OcrolusError(.unauthorized, endpoint: endpoint, httpStatus: 401, message: "refused a freshly issued token")
            }
            return (response, started)
        }
    }
}

/// Runs `operation`, retrying transient `OcrolusError`s per `policy` on `clock`.
public func withRetries<T: Sendable>(
    policy: RetryPolicy,
    clock: any WallClock,
    random: @Sendable () -> Double = { Double.random(in: 0..<1) },
    _ operation: () async throws -> T
) async throws -> T {
    var attempt = 1
    while true {
        do {
            return try await operation()
        } catch let error as OcrolusError where error.kind == .transient && attempt < policy.maxAttempts {
            let delay = policy.delay(afterAttempt: attempt, retryAfter: error.retryAfter, unitRandom: random())
            attempt += 1
            try await clock.sleep(for: delay)
        }
    }
}
