import Foundation

/// Who may deliver webhooks: a source allowlist (with trusted proxies for `X-Forwarded-For`) and
/// optional HTTP Basic credentials.
public struct WebhookAccessPolicy: Sendable {
    /// Allowed source networks; empty means any source.
    public var allow: [CIDR]
    /// Peers whose `X-Forwarded-For` is believed.
    public var trustedProxies: [CIDR]
    /// `user:password`, compared in constant time; nil means no Basic credentials required.
    public var basicCredentials: String?

    /// A policy; all empty: any source, no credentials.
    public init(allow: [CIDR] = [], trustedProxies: [CIDR] = [], basicCredentials: String? = nil) {
        self.allow = allow
        self.trustedProxies = trustedProxies
        self.basicCredentials = basicCredentials
    }

    /// The client address: the peer, or, when the peer is a trusted proxy, the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy.
    public func clientAddress(peer: String?, forwardedFor: String?) -> String? {
        guard let peer else { return nil }
        guard !trustedProxies.isEmpty, trustedProxies.contains(where: { $0.contains(peer) }), let forwardedFor else {
            return peer
        }
        let hops = forwardedFor.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() where !trustedProxies.contains(where: { $0.contains(hop) }) {
            return hop
        }
        return hops.first ?? peer
    }

    /// True when this policy checks anything about a delivery's origin (an allowlist or Basic
    /// credentials): a delivery it let through then proved where it came from.
    public var authenticates: Bool { !allow.isEmpty || basicCredentials != nil }

    /// True when `address` is in the allowlist (or there is none).
    public func isAllowed(_ address: String?) -> Bool {
        guard !allow.isEmpty else { return true }
        guard let address else { return false }
        return allow.contains { $0.contains(address) }
    }

    /// Checks an `Authorization` header against the configured credentials.
    public func credentialsAccepted(_ authorization: String?) -> Bool {
        guard let basicCredentials else { return true }
        guard let authorization, authorization.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces))
        else { return false }
        return Self.constantTimeEqual(Array(decoded), Array(basicCredentials.utf8))
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
