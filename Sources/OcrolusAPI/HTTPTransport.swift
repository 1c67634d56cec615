import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One HTTP request as the client sends it.
public struct OutgoingRequest: Sendable {
    /// The HTTP method.
    public var method: String
    /// The full URL.
    public var url: String
    /// Header fields, in order.
    public var headers: [(String, String)]
    /// The body, if any.
    public var body: [UInt8]?
    /// Longest wait for the answer.
    public var timeout: TimeInterval

    /// A request.
    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil, timeout: TimeInterval = 30) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }

    /// The first value of the header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }
}

/// One HTTP answer.
public struct IncomingResponse: Sendable {
    /// The HTTP status.
    public var status: Int
    /// Header fields, in order.
    public var headers: [(String, String)]
    /// The body.
    public var body: [UInt8]

    /// An answer.
    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of the header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }
}

/// Sends requests somewhere: AsyncHTTPClient in production, the simulator in-process in tests.
/// Connection errors and timeouts are thrown; any HTTP answer is returned.
public protocol HTTPTransport: Sendable {
    func send(_ request: OutgoingRequest) async throws -> IncomingResponse
}

/// The production transport on AsyncHTTPClient.
public struct AsyncHTTPClientTransport: HTTPTransport {
    let client: HTTPClient
    /// Largest answer body accepted (analytics can be large; anything beyond is an error).
    let maxBodyBytes: Int

    /// A transport on `client`, refusing answers larger than `maxBodyBytes`.
    public init(client: HTTPClient = .shared, maxBodyBytes: Int = 64 * 1024 * 1024) {
        self.client = client
        self.maxBodyBytes = maxBodyBytes
    }

    /// Sends the request; connection errors and timeouts throw, any HTTP answer returns.
    public func send(_ request: OutgoingRequest) async throws -> IncomingResponse {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if let body = request.body { outgoing.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(outgoing, timeout: .milliseconds(Int64(request.timeout * 1000)))
        let body = try await response.body.collect(upTo: maxBodyBytes)
        return IncomingResponse(
            status: Int(response.status.code),
            headers: response.headers.map { ($0.name, $0.value) },
            body: Array(body.readableBytesView)
        )
    }
}
