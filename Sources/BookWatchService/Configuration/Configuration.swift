import BookWatchStore
import Configuration
import Foundation
import OcrolusAPI

/// One setting of `serve`: its environment name (also its config-file name), the flag that
/// overrides it, its default, and whether it is a secret (never printed or logged).
public struct SettingSpec: Sendable, Equatable {
    /// The environment name (also its config-file name).
    public let name: String
    /// The flag that overrides it, if one does.
    public let flag: String?
    /// Its default, nil when it has none.
    public let defaultValue: String?
    /// A secret: never printed or logged.
    public let secret: Bool
    /// Secrets may also come from a file named by `NAME_FILE`.
    public let fileVariant: Bool
    /// What it does, in one line (docs/configuration.md and `bookwatch config`).
    public let summary: String

    init(
        _ name: String,
        flag: String? = nil,
        default defaultValue: String?,
        secret: Bool = false,
        fileVariant: Bool = false,
        _ summary: String
    ) {
        self.name = name
        self.flag = flag
        self.defaultValue = defaultValue
        self.secret = secret
        self.fileVariant = fileVariant
        self.summary = summary
    }
}

/// Every setting, in one table: `bookwatch config`, the config file's known names and
/// docs/configuration.md (checked by a test) all come from here.
public enum SettingCatalog {
    /// Every setting, in the order docs/configuration.md lists them.
    public static let all: [SettingSpec] = [
        SettingSpec("OCROLUS_API_URL", default: "https://api.ocrolus.com", "Ocrolus API base URL."),
        SettingSpec("OCROLUS_AUTH_URL", default: "https://auth.ocrolus.com/oauth/token", "Full OAuth token URL."),
        SettingSpec("OCROLUS_CLIENT_ID", default: nil, "API client id (required)."),
        SettingSpec("OCROLUS_CLIENT_SECRET", default: nil, secret: true, fileVariant: true, "API client secret (required)."),
        SettingSpec(
            "BOOKWATCH_DATABASE",
            flag: "--database",
            default: "./bookwatch.sqlite",
            "SQLite database file, or postgres://user:password@host:port/db for replicas sharing PostgreSQL (password redacted)."
        ),
        SettingSpec("BOOKWATCH_HOST", flag: "--host", default: "127.0.0.1", "Address the HTTP server listens on."),
        SettingSpec("BOOKWATCH_PORT", flag: "--port", default: "8080", "Port of the HTTP server (webhooks, metrics, health)."),
        SettingSpec(
            "BOOKWATCH_ADMIN_PORT",
            flag: "--admin-port",
            default: nil,
            "Port of a separate admin listener (/metrics, /books/{uuid}, /healthz, /readyz); the public port then serves only POST /webhooks/ocrolus. Unset: one listener serves all."
        ),
        SettingSpec(
            "BOOKWATCH_PUBLIC_URL",
            default: nil,
            "The URL Ocrolus delivers webhooks to (https://host/webhooks/ocrolus): the default of `webhooks register`, and what `webhooks check` and serve's startup check look for."
        ),
        SettingSpec(
            "BOOKWATCH_WEBHOOK_SECRET",
            default: nil,
            secret: true,
            fileVariant: true,
            "Webhook signing secret(s), comma-separated during a rotation; unset: signatures are not checked."
        ),
        SettingSpec(
            "BOOKWATCH_WEBHOOK_ALLOW",
            default: nil,
            "Comma-separated CIDRs webhooks may come from, `ocrolus` standing for Ocrolus's published addresses; unset: any source."
        ),
        SettingSpec(
            "BOOKWATCH_TRUSTED_PROXIES",
            default: nil,
            "Comma-separated CIDRs of proxies whose X-Forwarded-For names the real source."
        ),
        SettingSpec(
            "BOOKWATCH_WEBHOOK_BASIC_AUTH",
            default: nil,
            secret: true,
            fileVariant: true,
            "user:password required on webhook deliveries (optional)."
        ),
        SettingSpec("BOOKWATCH_WEBHOOK_MAX_BYTES", default: "1048576", "Largest webhook body accepted (413 above)."),
        SettingSpec("BOOKWATCH_WEBHOOK_TOLERANCE_SECONDS", default: "300", "Largest clock skew of a signed webhook's timestamp."),
        SettingSpec("BOOKWATCH_RATE_LIMIT", default: "5", "Ocrolus requests per second, for the whole organisation."),
        SettingSpec("BOOKWATCH_RATE_BURST", default: "25", "Requests allowed at once before the rate applies."),
        SettingSpec("BOOKWATCH_POLL_MIN_SECONDS", default: "60", "Shortest interval between scheduled polls of a Book."),
        SettingSpec("BOOKWATCH_POLL_MAX_SECONDS", default: "1800", "Longest interval between scheduled polls of a Book."),
        SettingSpec("BOOKWATCH_ANALYTICS", default: "summary", "Comma-separated analytics endpoints retrieved per finished Book."),
        SettingSpec("BOOKWATCH_AUTO_TRACK", default: "true", "Track unknown Books that webhooks mention."),
        SettingSpec(
            "BOOKWATCH_WATCH_COMPLETED_HOURS",
            default: "168",
            "How long a finished Book is still polled to notice a reopen (0: not at all)."
        ),
        SettingSpec("BOOKWATCH_ANALYTICS_RETRY_MAX_SECONDS", default: "300", "Longest wait between analytics attempts."),
        SettingSpec(
            "BOOKWATCH_ANALYTICS_GIVE_UP_HOURS",
            default: "48",
            "A Book's analytics job still not retrieved this long after it opened fails (waiting on 425 is not an error)."
        ),
        SettingSpec(
            "BOOKWATCH_RETAIN_DAYS",
            default: "30",
            "Processed webhook deliveries, delivered notifications and finished jobs of earlier generations older than this are pruned (at least 1); analytics and Books are kept."
        ),
        SettingSpec(
            "BOOKWATCH_LEASE_SECONDS",
            default: "120",
            "How long a replica's claim on a poll, webhook or analytics job holds (at least 45; renewed before each analytics request); a dead replica's work waits at most this."
        ),
        SettingSpec(
            "BOOKWATCH_WEBHOOK_TRUST",
            default: "measured",
            "measured: while webhooks prove reliable, a finished book.verified body needs no status call and finished Books are polled ever more rarely; never: always confirm by polling."
        ),
        SettingSpec(
            "BOOKWATCH_EXPORT_DIR",
            flag: "--export-dir",
            default: nil,
            "Directory each stored retrieval's results are written to, one JSON file per (Book, generation, endpoint), atomically and never rewritten (at least once)."
        ),
        SettingSpec(
            "BOOKWATCH_ON_COMPLETE",
            flag: "--on-complete",
            default: nil,
            "Command run once per stored retrieval (sh -c), with BOOKWATCH_BOOK_UUID, BOOKWATCH_GENERATION, BOOKWATCH_IDEMPOTENCY_KEY."
        ),
        SettingSpec(
            "BOOKWATCH_ON_COMPLETE_TIMEOUT",
            default: "60",
            "Seconds an --on-complete command may run before it is stopped (SIGTERM, SIGKILL 5 s later) and retried with backoff."
        ),
        SettingSpec(
            "BOOKWATCH_LOG_LEVEL",
            flag: "--log-level",
            default: "info",
            "trace, debug, info, notice, warning, error or critical."
        ),
        SettingSpec("BOOKWATCH_LOG_FORMAT", flag: "--log-format", default: "text", "text (one line per event) or json (one object per line)."),
    ]

    /// The setting named `name`.
    public static func spec(_ name: String) -> SettingSpec? { all.first { $0.name == name } }

    /// Names a config file may set: every setting, and `NAME_FILE` for secrets.
    public static let fileNames: Set<String> = Set(all.map(\.name) + all.filter(\.fileVariant).map { $0.name + "_FILE" })

    /// The names whose values are secrets (never printed or logged).
    public static let secretNames: Set<String> = Set(all.filter(\.secret).map(\.name))

    /// Secrets and the settings whose values may embed one: never written out in clear by the
    /// configuration library's access reporting.
    public static let redactedNames: Set<String> = secretNames.union(["BOOKWATCH_DATABASE", "BOOKWATCH_ON_COMPLETE"])

    /// A setting's key for swift-configuration: its environment name lower-cased, one component per
    /// `_` (`EnvironmentVariablesProvider` encodes it back to the name).
    public static func key(_ name: String) -> ConfigKey {
        ConfigKey(name.lowercased().split(separator: "_").map(String.init))
    }
}

/// Where a setting's value came from.
public enum SettingSource: Sendable, Equatable, CustomStringConvertible {
    case flag(String)
    case environment
    case file(String)
    case `default`

    /// The layer, as `bookwatch config` prints it.
    public var description: String {
        switch self {
        case .flag(let flag): "flag \(flag)"
        case .environment: "environment"
        case .file(let path): "file \(path)"
        case .default: "default"
        }
    }
}

/// The three layers of configuration, flags > environment > config file > defaults, read in one
/// place through apple/swift-configuration: one `EnvironmentVariablesProvider` per layer, queried
/// by a `ConfigReader` in that order (each setting's key is its environment name in dotted form,
/// `BOOKWATCH_PORT` as `bookwatch.port`). `merged` is what the settings resolvers read; `effective`
/// is what `bookwatch config` prints, with `source(of:)` naming the layer that won.
public struct LayeredConfiguration: Sendable {
    /// Flag values, keyed by the setting's environment name.
    public let flags: [String: String]
    /// The process environment.
    public let environment: [String: String]
    /// The config file's values (empty without one).
    public let file: [String: String]
    /// The config file, if one is named.
    public let filePath: String?

    /// Reads the config file named by `configPath` (flag) or `BOOKWATCH_CONFIG`, if any.
    public init(environment: [String: String], flags: [String: String] = [:], configPath: String? = nil) throws(ConfigurationError) {
        self.environment = environment
        self.flags = flags
        let path = configPath ?? environment["BOOKWATCH_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        filePath = path
        if let path {
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw ConfigurationError(setting: "--config/BOOKWATCH_CONFIG \(path)", problem: "cannot read the file")
            }
            file = try ConfigFile.parse(text, path: path)
        } else {
            file = [:]
        }
    }

    /// The reader over the three layers, flags first. Secrets are marked, and so are the values
    /// that may carry one (a `postgres://` URL's password, a hook command's token), so the
    /// library's access log (`CONFIG_ACCESS_LOG_FILE`, when set) redacts them.
    public var reader: ConfigReader {
        let secrets = SecretsSpecifier<String, String>.specific(SettingCatalog.redactedNames)
        return ConfigReader(
            providers: [flags, environment, file].map { EnvironmentVariablesProvider(environmentVariables: $0, secretsSpecifier: secrets) }
        )
    }

    /// Every setting the catalog knows (and `NAME_FILE` of secrets), resolved: flags > environment >
    /// file; a layer that sets a name to the empty string still wins (the resolvers read it as unset).
    public var merged: [String: String] {
        let reader = reader
        var values: [String: String] = [:]
        for name in SettingCatalog.fileNames {
            if let value = reader.string(forKey: SettingCatalog.key(name), isSecret: SettingCatalog.redactedNames.contains(name)) {
                values[name] = value
            }
        }
        return values
    }

    /// The layer the value of `name` comes from (a `NAME_FILE` counts for `NAME`).
    public func source(of name: String) -> SettingSource {
        func set(_ layer: [String: String], _ key: String) -> Bool { layer[key].map { !$0.isEmpty } ?? false }
        if set(flags, name), let flag = SettingCatalog.spec(name)?.flag { return .flag(flag) }
        if set(environment, name) || set(environment, name + "_FILE") { return .environment }
        if let filePath, set(file, name) || set(file, name + "_FILE") { return .file(filePath) }
        return .default
    }

    /// One line of `bookwatch config`.
    public struct Entry: Sendable, Equatable {
        /// The setting.
        public let name: String
        /// The value to show: secrets redacted, nil when unset.
        public let value: String?
        /// Where the value came from.
        public let source: SettingSource
        /// Whether it is a secret.
        public let secret: Bool
    }

    /// Every setting with its effective value (secrets redacted) and where it came from.
    public var effective: [Entry] {
        let values = merged
        return SettingCatalog.all.map { spec in
            let raw = values[spec.name].flatMap { $0.isEmpty ? nil : $0 }
            let fromFile = values[spec.name + "_FILE"].flatMap { $0.isEmpty ? nil : $0 }
            let shown: String?
            if spec.secret {
                if raw != nil { shown = "(redacted)" } else if let fromFile { shown = "(redacted, read from \(fromFile))" } else { shown = nil }
            } else if spec.name == "BOOKWATCH_DATABASE", let raw {
                shown = DatabaseLocation(raw).redacted  // a postgres:// URL carries a password
            } else if spec.name == "BOOKWATCH_WEBHOOK_ALLOW", let raw, OcrolusWebhookSources.isNamed(in: raw) {
                shown = "\(raw) = \(OcrolusWebhookSources.expanding(raw).joined(separator: ","))"  // the preset expanded
            } else {
                shown = raw ?? spec.defaultValue
            }
            return Entry(name: spec.name, value: shown, source: source(of: spec.name), secret: spec.secret)
        }
    }
}
