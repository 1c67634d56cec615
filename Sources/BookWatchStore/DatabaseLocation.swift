import Foundation

/// What `BOOKWATCH_DATABASE` names: a SQLite file, or a PostgreSQL database shared by replicas.
public enum DatabaseLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(url: String)

    /// A `postgres://` or `postgresql://` URL, else a SQLite path.
    public init(_ value: String) {
        self = value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") ? .postgres(url: value) : .sqlite(path: value)
    }

    /// Safe to print and log: a URL's password is replaced by `***`.
    public var redacted: String {
        switch self {
        case .sqlite(let path):
            return path
        case .postgres(let url):
            guard var components = URLComponents(string: url), components.password != nil else { return url }
            components.password = "***"
            return components.string ?? "postgres://(unreadable URL)"
        }
    }
}
