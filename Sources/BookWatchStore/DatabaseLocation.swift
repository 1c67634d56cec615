import Foundation

/// What `BOOKWATCH_DATABASE` names: a SQLite file, or a PostgreSQL database shared by replicas.
public enum DatabaseLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(url: String)

    /// A `postgres://` or `postgresql://` URL, else a SQLite path.
    public init(_ value: String) {
        self = value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") ? .postgres(url: value) : .sqlite(path: value)
    }

    /// True when a PostgreSQL URL names a schema (`schema=` in its query), or might: a URL that
    /// does not parse, or has a fragment (where an appended `schema=` would be lost), counts.
    /// The benchmarks and the chaos search make schemas of their own and drop them after: never
    /// in a URL that already chose one.
    package static func namesSchema(_ url: String) -> Bool {
        guard let components = URLComponents(string: url), components.fragment == nil else { return true }
        return components.queryItems?.contains { $0.name == "schema" } ?? false  // no query, no schema
    }

    /// `url` with `schema=name` added to its query; nil when the URL names a schema already, or
    /// might (`namesSchema`).
    package static func url(_ url: String, schema name: String) -> String? {
        guard !namesSchema(url), var components = URLComponents(string: url) else { return nil }
        components.queryItems = (components.queryItems ?? []) + [URLQueryItem(name: "schema", value: name)]
        return components.string
    }

    /// Safe to print and log: a URL's password is replaced by `***`.
    public var redacted: String {
        switch self {
        case .sqlite(let path):
            return path
        case .postgres(let url):
            guard var components = URLComponents(string: url) else { return "postgres://(unreadable URL)" }
            guard components.password != nil else { return url }
            components.password = "***"
            return components.string ?? "postgres://(unreadable URL)"
        }
    }
}
