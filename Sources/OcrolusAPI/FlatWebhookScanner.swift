/// The common webhook body read without `JSONDecoder` (which was 8% of the webhook door's CPU):
/// one flat JSON object of scalars, printable ASCII strings without escapes, integers where the
/// pks go. Anything else (a nested value, an escape, a non-ASCII byte, a fraction where an
/// integer belongs, a repeated key, a wrong type for a known field, trailing bytes) answers nil
/// and the caller decodes the body with `JSONDecoder`, which then decides, with its own errors.
/// So a body this reading accepts gives exactly the `RawWebhook` `JSONDecoder` would
/// (`FlatWebhookScannerTests` checks that on the fuzz corpus, the payload samples and mutations of
/// them).
enum FlatWebhookScanner {
    /// The wire shape, or nil when the body is not one this reading handles exactly.
    static func scan(_ bytes: [UInt8]) -> RawWebhook? {
        var cursor = Cursor(bytes: bytes)
        guard let raw = cursor.object() else { return nil }
        cursor.skipSpace()
        return cursor.index == bytes.count ? raw : nil
    }

    /// A JSON scalar as this reading sees it.
    enum Scalar {
        case string(String)
        case integer(Int)
        /// A valid JSON number with a fraction or an exponent.
        case otherNumber
        case bool
        case null
    }

    struct Cursor {
        let bytes: [UInt8]
        var index = 0

        static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")

        /// JSON's whitespace: space, tab, line feed, carriage return.
        mutating func skipSpace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            skipSpace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// A string of printable ASCII without escapes (nil for any other, valid or not).
        mutating func string() -> String? {
            skipSpace()
            guard index < bytes.count, bytes[index] == Self.quote else { return nil }
            let start = index + 1
            var end = start
            while end < bytes.count, bytes[end] != Self.quote {
                let byte = bytes[end]
                if byte == Self.backslash || byte < 0x20 || byte >= 0x80 { return nil }
                end += 1
            }
            guard end < bytes.count else { return nil }
            index = end + 1
            return String(decoding: bytes[start..<end], as: UTF8.self)
        }

        mutating func literal(_ text: StaticString, _ value: Scalar) -> Scalar? {
            let count = text.utf8CodeUnitCount
            guard index + count <= bytes.count else { return nil }
            for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] { return nil }
            index += count
            return value
        }

        func digit(_ at: Int) -> Bool { at < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at]) }

        /// A number in JSON's grammar; an integer that does not fit an `Int` is nil.
        mutating func number() -> Scalar? {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digit(index) else { return nil }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                while digit(index) { index += 1 }
            }
            var integral = true
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                integral = false
                index += 1
                guard digit(index) else { return nil }
                while digit(index) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                integral = false
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard digit(index) else { return nil }
                while digit(index) { index += 1 }
            }
            guard integral else { return .otherNumber }
            return Int(String(decoding: bytes[start..<index], as: UTF8.self)).map { .integer($0) }
        }

        /// A scalar; nil for an object, an array or anything invalid.
        mutating func scalar() -> Scalar? {
            skipSpace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case Self.quote: return string().map { .string($0) }
            case UInt8(ascii: "t"): return literal("true", .bool)
            case UInt8(ascii: "f"): return literal("false", .bool)
            case UInt8(ascii: "n"): return literal("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
            default: return nil
            }
        }

        /// The most keys the fast reading takes.
        static let maximumKeys = 32

        /// The top-level object, each known field as `RawWebhook`'s decoder would read it.
        mutating func object() -> RawWebhook? {
            guard take(UInt8(ascii: "{")) else { return nil }
            var raw = RawWebhook()
            if take(UInt8(ascii: "}")) { return raw }
            // A delivery has a dozen keys: a linear search of them costs less than hashing. Past
            // `maximumKeys` the body is left to `JSONDecoder` (linear in the keys, where this search
            // is quadratic: a 1 MiB body of 130k short keys would hold a core for a minute).
            var seen: [String] = []
            repeat {
                guard seen.count < Self.maximumKeys, let key = string(), !seen.contains(key), take(UInt8(ascii: ":")), let value = scalar() else {
                    return nil
                }
                seen.append(key)
                switch key {
                case "event_name": guard Self.text(value, into: &raw.eventName) else { return nil }
                case "book_uuid": guard Self.text(value, into: &raw.bookUUID) else { return nil }
                case "uuid": guard Self.text(value, into: &raw.uuid) else { return nil }
                case "doc_uuid": guard Self.text(value, into: &raw.docUUID) else { return nil }
                case "uploaded_doc_uuid": guard Self.text(value, into: &raw.uploadedDocUUID) else { return nil }
                case "status": guard Self.text(value, into: &raw.status) else { return nil }
                case "book_pk": guard Self.integer(value, into: &raw.bookPK) else { return nil }
                case "uploaded_doc_pk": guard Self.integer(value, into: &raw.uploadedDocPK) else { return nil }
                case "uploaded_docs":
                    guard case .null = value else { return nil }  // a list: JSONDecoder reads it
                case "book_name":
                    switch value {
                    case .null: raw.bookName = nil
                    case .string(let text): raw.bookName = LenientText(text: text)
                    default: raw.bookName = LenientText(text: nil)
                    }
                default: break  // a field bookwatch does not read
                }
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "}")) ? raw : nil
        }

        /// A `String?` field: a string, or null for none; false for any other type.
        static func text(_ value: Scalar, into field: inout String?) -> Bool {
            switch value {
            case .string(let text): field = text
            case .null: field = nil
            default: return false
            }
            return true
        }

        /// A `FlexibleInt?` field: an integer, a string `Int` reads, or null; false otherwise.
        static func integer(_ value: Scalar, into field: inout FlexibleInt?) -> Bool {
            switch value {
            case .integer(let number): field = FlexibleInt(value: number)
            case .string(let text):
                guard let number = Int(text) else { return false }
                field = FlexibleInt(value: number)
            case .null: field = nil
            default: return false
            }
            return true
        }
    }
}
