import Foundation

/// The simulator's answers as `JSONSerialization` writes them with `.sortedKeys` and
/// `.withoutEscapingSlashes`, byte for byte, for the values its answers hold; a third of the chaos
/// search's time in the simulator went to `JSONSerialization` (bridging every value, sorting keys
/// through `AnyHashable` and a locale-aware comparison).
///
/// Only what it can write exactly: keys of lower-case ASCII letters and `_` (where Foundation's
/// numeric, case-insensitive order is plain byte order), strings of printable ASCII, integers,
/// booleans, null, arrays and objects of those. Anything else answers nil and the caller uses
/// `JSONSerialization`.
enum SimulatorJSON {
    static func encode(_ object: Any) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        return write(object, into: &out) ? out : nil
    }

    private static func write(_ value: Any, into out: inout [UInt8]) -> Bool {
        // By exact type first: a cast that fails (a dictionary `as? String`) tries Foundation's
        // bridging on Linux, which made those casts the writer's largest cost.
        switch ObjectIdentifier(type(of: value)) {
        case ObjectIdentifier(String.self): return string(value as! String, into: &out)
        case ObjectIdentifier(Int.self):
            out.append(contentsOf: String(value as! Int).utf8)
            return true
        case ObjectIdentifier([String: Any].self): return object(value as! [String: Any], into: &out)
        case ObjectIdentifier([[String: Any]].self): return array(value as! [[String: Any]], into: &out)
        default: break
        }
        switch value {
        case let text as String:
            return string(text, into: &out)
        case let number as Int:
            out.append(contentsOf: String(number).utf8)
        case let flag as Bool:
            out.append(contentsOf: (flag ? "true" : "false").utf8)
        case is NSNull:
            out.append(contentsOf: "null".utf8)
        case let object as [String: Any]:
            return Self.object(object, into: &out)
        case let items as [Any]:
            return array(items, into: &out)
        default:
            return false
        }
        return true
    }

    private static func object(_ object: [String: Any], into out: inout [UInt8]) -> Bool {
        out.append(UInt8(ascii: "{"))
        for (index, key) in object.keys.sorted().enumerated() {
            guard key.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) }),
                let item = object[key]
            else { return false }
            if index > 0 { out.append(UInt8(ascii: ",")) }
            _ = string(key, into: &out)
            out.append(UInt8(ascii: ":"))
            guard write(item, into: &out) else { return false }
        }
        out.append(UInt8(ascii: "}"))
        return true
    }

    private static func array(_ items: [some Any], into out: inout [UInt8]) -> Bool {
        out.append(UInt8(ascii: "["))
        for (index, item) in items.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            guard write(item, into: &out) else { return false }
        }
        out.append(UInt8(ascii: "]"))
        return true
    }

    /// A string of printable ASCII; false for anything Foundation might escape otherwise.
    private static func string(_ text: String, into out: inout [UInt8]) -> Bool {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            guard byte >= 0x20, byte < 0x7F else { return false }
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
            out.append(byte)
        }
        out.append(UInt8(ascii: "\""))
        return true
    }
}
