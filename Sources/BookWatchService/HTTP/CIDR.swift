import Foundation

/// An IPv4 or IPv6 network such as `18.205.30.63/32` or `2001:db8::/32`; a bare address is a
/// single-host network.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    /// 4 or 16 bytes, masked to the prefix.
    public let network: [UInt8]
    /// The prefix length in bits.
    public let prefixLength: Int

    /// Parses `address[/prefix]`; nil when either part is invalid.
    public init?(_ text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let bytes = Self.parseAddress(String(parts[0])) else { return nil }
        let maximum = bytes.count * 8
        var prefix = maximum
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...maximum).contains(parsed), parts[1].allSatisfy(\.isNumber) else { return nil }
            prefix = parsed
        }
        network = Self.mask(bytes, prefix)
        prefixLength = prefix
    }

    /// True when the address bytes are in the network (same family).
    public func contains(_ address: [UInt8]) -> Bool {
        var candidate = address
        // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 networks.
        if network.count == 4, address.count == 16, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xFF, address[11] == 0xFF {
            candidate = Array(address[12..<16])
        }
        guard candidate.count == network.count else { return false }
        return Self.mask(candidate, prefixLength) == network
    }

    /// True when the textual address is in the network.
    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.parseAddress(address) else { return false }
        return contains(bytes)
    }

    /// `address/prefix`.
    public var description: String {
        let address: String
        if network.count == 4 {
            address = network.map(String.init).joined(separator: ".")
        } else {
            address = stride(from: 0, to: 16, by: 2).map { String(UInt16(network[$0]) << 8 | UInt16(network[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        }
        return "\(address)/\(prefixLength)"
    }

    /// 4 bytes for IPv4, 16 for IPv6 (brackets and a zone are accepted and ignored).
    public static func parseAddress(_ text: String) -> [UInt8]? {
        var text = text.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let zone = text.firstIndex(of: "%") { text = String(text[..<zone]) }
        if text.contains(":") {
            var address = in6_addr()
            guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
            return withUnsafeBytes(of: &address) { Array($0) }
        }
        var address = in_addr()
        guard text.split(separator: ".").count == 4, inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    static func mask(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = max(0, min(8, prefix - index * 8))
            return bits == 0 ? 0 : byte & UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        }
    }
}
