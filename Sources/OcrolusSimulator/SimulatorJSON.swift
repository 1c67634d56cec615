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
    /// `escapingSlashes`: as `JSONSerialization` without `.withoutEscapingSlashes` (`/` as `\/`).
    static func encode(_ object: Any, escapingSlashes: Bool = false) -> [UInt8]? {
        var writer = Writer(escapingSlashes: escapingSlashes)
        writer.out.reserveCapacity(256)
        return writer.write(object) ? writer.out : nil
    }

    private struct Writer {
        let escapingSlashes: Bool
        var out: [UInt8] = []

        mutating func write(_ value: Any) -> Bool {
            // By exact type first: a cast that fails (a dictionary `as? String`) tries Foundation's
            // bridging on Linux, which made those casts the writer's largest cost.
            switch ObjectIdentifier(type(of: value)) {
            case ObjectIdentifier(String.self): return string(value as! String)
            case ObjectIdentifier(Int.self):
                out.append(contentsOf: String(value as! Int).utf8)
                return true
            case ObjectIdentifier([String: Any].self): return object(value as! [String: Any])
            case ObjectIdentifier([[String: Any]].self): return array(value as! [[String: Any]])
            default: break
            }
            switch value {
            case let text as String:
                return string(text)
            case let number as Int:
                out.append(contentsOf: String(number).utf8)
            case let flag as Bool:
                out.append(contentsOf: (flag ? "true" : "false").utf8)
            case is NSNull:
                out.append(contentsOf: "null".utf8)
            case let object as [String: Any]:
                return self.object(object)
            case let items as [Any]:
                return array(items)
            default:
                return false
            }
            return true
        }

        mutating func object(_ object: [String: Any]) -> Bool {
            out.append(UInt8(ascii: "{"))
            for (index, key) in object.keys.sorted().enumerated() {
                guard key.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) }),
                    let item = object[key]
                else { return false }
                if index > 0 { out.append(UInt8(ascii: ",")) }
                _ = string(key)
                out.append(UInt8(ascii: ":"))
                guard write(item) else { return false }
            }
            out.append(UInt8(ascii: "}"))
            return true
        }

        mutating func array(_ items: [some Any]) -> Bool {
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                guard write(item) else { return false }
            }
            out.append(UInt8(ascii: "]"))
            return true
        }

        /// A string of printable ASCII; false for anything Foundation might escape otherwise.
        mutating func string(_ text: String) -> Bool {
            out.append(UInt8(ascii: "\""))
            for byte in text.utf8 {
                guard byte >= 0x20, byte < 0x7F else { return false }
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || (escapingSlashes && byte == UInt8(ascii: "/")) {
                    out.append(UInt8(ascii: "\\"))
                }
                out.append(byte)
            }
            out.append(UInt8(ascii: "\""))
            return true
        }
    }
}
