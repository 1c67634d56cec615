/// A Book's uuid as Ocrolus issues it, validated and normalised to lower case.
///
/// Invariant: `rawValue` is always 36 characters of the form `8-4-4-4-12` lower-case hex digits,
/// so two spellings of the same uuid compare equal and can key a database row.
///
/// ```swift
/// let uuid = try BookUUID(parsing: "09C52985-2F05-4022-A738-9277CC335C7E")
/// uuid.rawValue // "09c52985-2f05-4022-a738-9277cc335c7e"
/// ```
public struct BookUUID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The uuid, lower-cased.
    public let rawValue: String

    /// Parses a uuid, or returns nil when `text` is not a well-formed one.
    public init?(_ text: some StringProtocol) {
        guard let normalised = Self.normalise(text) else { return nil }
        self.rawValue = normalised
    }

    /// Parses a uuid, throwing an error that quotes the bad input.
    public init(parsing text: String) throws(MalformedUUID) {
        guard let value = BookUUID(text) else { throw MalformedUUID(input: text) }
        self = value
    }

    /// The uuid, lower-cased.
    public var description: String { rawValue }

    /// uuid order (the order of `status` and of tightened polls).
    public static func < (lhs: BookUUID, rhs: BookUUID) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Lower-cases and checks the `8-4-4-4-12` hex layout; nil when it does not fit.
    static func normalise(_ text: some StringProtocol) -> String? {
        let utf8 = Array(text.utf8)
        guard utf8.count == 36 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(36)
        for (index, byte) in utf8.enumerated() {
            switch index {
            case 8, 13, 18, 23:
                guard byte == UInt8(ascii: "-") else { return nil }
                out.append(byte)
            default:
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"):
                    out.append(byte)
                case UInt8(ascii: "A")...UInt8(ascii: "F"):
                    out.append(byte + 32)
                default:
                    return nil
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The error for a string that is not a uuid; `input` is the offending text.
public struct MalformedUUID: Error, Equatable, CustomStringConvertible {
    /// The text that is not a uuid.
    public let input: String
    /// The error for `input`.
    public init(input: String) { self.input = input }
    /// Names the text and the expected form.
    public var description: String { "'\(input)' is not a uuid (expected 8-4-4-4-12 hex digits)" }
}
