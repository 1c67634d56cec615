import Foundation

/// One page of a paged analytics endpoint (`enriched_txns`): at most `limit` items from `offset`.
public struct AnalyticsPageRequest: Sendable, Hashable {
    /// Items skipped.
    public var offset: Int
    /// Items asked for at most.
    public var limit: Int

    /// A page of `limit` items from `offset`.
    public init(offset: Int, limit: Int) {
        self.offset = offset
        self.limit = limit
    }

    /// The query string Ocrolus reads (`offset=...&limit=...`).
    public var query: String { "offset=\(offset)&limit=\(limit)" }
}

/// What a page says about the pages after it.
public enum AnalyticsPageEnd: Sendable, Equatable {
    /// No page after this one.
    case last
    /// The next page starts at this offset.
    case next(offset: Int)
}

/// How bookwatch reads and keeps a paged endpoint. Ocrolus documents only the `offset` and
/// `limit` parameters, not the page's shape, so the rules lean on nothing else and never take a
/// page for the last one on a guess:
/// - the items are the array under `response` (or the body): a known name first, else the
///   longest array there;
/// - a page is the last when it says so (`total` reached, `has_more` false, `next` null) or holds
///   no items; otherwise the next page starts after the items received (a server that answers
///   fewer than asked, a cap of its own, loses nothing: the cost is one empty page at the end);
/// - a page that cannot be read as JSON, or has no array at all, is the only page;
/// - the stored result keeps every page's bytes as Ocrolus sent them (amounts are not re-encoded
///   through a `Double`): `{"endpoint": ..., "limit": ..., "pages": [page, page, ...]}`.
public enum AnalyticsPaging {
    /// Items asked for per page.
    public static let defaultLimit = 1000

    /// At most this many pages per (Book, generation): more fails the job (a server that ignores
    /// `offset` and answers full pages for ever), rather than store a result cut short.
    public static let maximumPages = 1_000

    /// At most this many bytes of pages per (Book, generation), for the same reason.
    public static let maximumBytes = 256 << 20

    /// Array names tried first, in this order, before the longest array.
    static let itemKeys = ["enriched_transactions", "enriched_txns", "transactions", "txns", "items", "data", "results"]

    /// Where the pages go after `body`, the answer to the page at `offset`.
    public static func end(of body: [UInt8], offset: Int) -> AnalyticsPageEnd {
        guard let json = parse(body), let items = items(in: json) else { return .last }
        let outer = json as? [String: Any] ?? [:]
        let inner = (outer["response"] as? [String: Any]) ?? [:]
        for scope in [inner, outer] {
            for key in ["has_more", "hasMore"] where scope.keys.contains(key) {
                if let more = scope[key] as? Bool, !more { return .last }
                if scope[key] is NSNull { return .last }
            }
            for key in ["next", "next_offset"] where scope.keys.contains(key) && scope[key] is NSNull {
                return .last
            }
            for key in ["total", "total_count", "totalCount"] {
                if let total = scope[key] as? NSNumber, !(scope[key] is Bool), offset + items.count >= total.intValue { return .last }
            }
        }
        return items.isEmpty ? .last : .next(offset: offset + items.count)
    }

    /// The items of a page, re-encoded with sorted keys: two answers with the same items (a
    /// server ignoring the offset) compare equal whatever else they carry. Nil without items.
    public static func itemsDigest(_ body: [UInt8]) -> [UInt8]? {
        guard let json = parse(body), let items = items(in: json), !items.isEmpty else { return nil }
        return (try? JSONSerialization.data(withJSONObject: items, options: [.sortedKeys, .fragmentsAllowed])).map { Array($0) }
    }

    /// The page as JSON: UTF-8 without a byte-order mark only, so its bytes can stand inside the
    /// stored document as they are.
    static func parse(_ bytes: [UInt8]) -> Any? {
        guard !bytes.starts(with: [0xEF, 0xBB, 0xBF]), String(validating: bytes, as: UTF8.self) != nil else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    }

    /// The items: the array under `response` (or the body), a known name first, else the longest.
    static func items(in json: Any) -> [Any]? {
        let container = (json as? [String: Any])?["response"] ?? json
        if let items = container as? [Any] { return items }
        guard let object = container as? [String: Any] else { return nil }
        for key in itemKeys { if let items = object[key] as? [Any] { return items } }
        return object.values.compactMap { $0 as? [Any] }.max { $0.count < $1.count }
    }

    /// The stored result of a paged endpoint: every page's bytes, unchanged, in offset order.
    public static func assemble(endpoint: String, limit: Int, pages: [[UInt8]]) -> [UInt8] {
        var body = Array("{\"endpoint\":\"\(endpoint)\",\"limit\":\(limit),\"pages\":[".utf8)
        for (index, page) in pages.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body += parse(page) != nil ? page : Array(quotedString(page).utf8)
        }
        body += Array("]}".utf8)
        return body
    }

    /// A page that is not JSON (or not UTF-8) is kept as a JSON string, so the result stays one document.
    static func quotedString(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed])) ?? Data("[\"\"]".utf8)
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }

    /// The pages of a stored paged result, re-encoded (nil when `body` is not one): for checks.
    public static func pages(of body: [UInt8]) -> [[UInt8]]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let pages = object["pages"] as? [Any]
        else { return nil }
        return pages.compactMap { page in
            (try? JSONSerialization.data(withJSONObject: page, options: [.fragmentsAllowed])).map { Array($0) }
        }
    }
}
