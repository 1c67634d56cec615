import Foundation

/// A failed call to Ocrolus, classified for the retry policy and the state machine.
public struct OcrolusError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What the caller should do about it.
    public enum Kind: String, Sendable {
        /// 5xx, 429, timeout, connection error, an unreadable answer: try again later.
        case transient
        /// 403/2102 (no permission), other 4xx with an answer: do not retry. (Book gone, code
        /// 1401, is an answer of its own: `BookSnapshot.gone` for a status call.)
        case permanent
        /// 401 after a fresh token, or the token endpoint refusing the credentials.
        case unauthorized
    }

    /// What to do about it.
    public let kind: Kind
    /// The endpoint, e.g. `book_status`, `analytics/summary`, `token`.
    public let endpoint: String
    /// The HTTP status, nil when no answer came.
    public let httpStatus: Int?
    /// Ocrolus's error `code` from the body (1401, 2102, 9004...).
    public let code: Int?
    /// What went wrong, in words (Ocrolus's message when it sent one).
    public let message: String
    /// A `Retry-After` the answer carried, in seconds from when it was received.
    public let retryAfter: TimeInterval?

    /// An error of `kind` from `endpoint`.
    public init(
        _ kind: Kind,
        endpoint: String,
        httpStatus: Int? = nil,
        code: Int? = nil,
        message: String,
        retryAfter: TimeInterval? = nil
    ) {
        self.kind = kind
        self.endpoint = endpoint
        self.httpStatus = httpStatus
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    /// True for a 429.
    public var isRateLimited: Bool { httpStatus == 429 }

    /// Book not found in Ocrolus's own words: code 1401 under any HTTP status. A bare 404 is not.
    public var isBookGone: Bool { code == 1401 }

    /// One line: endpoint, status, code and message.
    public var description: String {
        var parts = ["\(endpoint):"]
        if let httpStatus { parts.append("HTTP \(httpStatus)") }
        if let code { parts.append("code \(code)") }
        parts.append(message)
        return parts.joined(separator: " ")
    }

    /// Classifies a non-success answer.
    static func classify(
        endpoint: String,
        httpStatus: Int,
        code: Int?,
        message: String,
        retryAfter: TimeInterval?
    )
        -> OcrolusError
    {
        let kind: Kind
        switch httpStatus {
        case 429, 408, 500...599: kind = .transient
        case 401: kind = .unauthorized
        // A 404 without Ocrolus's error code is a gateway's or a proxy's page, not an answer; and a
        // Book gone (1401) is decided by the status endpoint, twice, not by one analytics answer.
        case _ where code == 1401: kind = .transient
        case 404 where code == nil: kind = .transient
        default:
            // Permanent only in Ocrolus's own words (an error code): a bare 4xx is a gateway's, a
            // WAF's or a proxy's page, and one of them must not end a Book's watch.
            kind = code == nil ? .transient : .permanent
        }
        return OcrolusError(kind, endpoint: endpoint, httpStatus: httpStatus, code: code, message: message, retryAfter: retryAfter)
    }
}
