import Foundation
import OcrolusAPI

/// A setting that cannot be used; the message names it (flag or environment variable).
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// The setting (environment name, flag or file and line).
    public let setting: String
    /// What is wrong with it.
    public let problem: String
    /// An error about `setting`.
    public init(setting: String, problem: String) {
        self.setting = setting
        self.problem = problem
    }
    /// `setting: problem`.
    public var description: String { "\(setting): \(problem)" }
}

/// The ingress part of `serve`'s configuration, resolved flags > environment > defaults and
/// validated before anything starts.
public struct IngressSettings: Sendable {
    /// `BOOKWATCH_HOST` / `--host`.
    public var host = "127.0.0.1"
    /// `BOOKWATCH_PORT` / `--port`.
    public var port = 8080
    /// The admin listener's port (`BOOKWATCH_ADMIN_PORT`); nil: one listener serves everything.
    public var adminPort: Int?
    /// The URL Ocrolus delivers to (`BOOKWATCH_PUBLIC_URL`), if given.
    public var publicURL: String?
    /// `BOOKWATCH_WEBHOOK_SECRET`: every secret accepted (several during a rotation).
    public var webhookSecrets: [String] = []
    /// `BOOKWATCH_WEBHOOK_TOLERANCE_SECONDS`.
    public var signatureTolerance: TimeInterval = 300
    /// `BOOKWATCH_WEBHOOK_ALLOW`: networks deliveries may come from (empty: any).
    public var allow: [CIDR] = []
    /// `BOOKWATCH_TRUSTED_PROXIES`: proxies whose `X-Forwarded-For` is believed.
    public var trustedProxies: [CIDR] = []
    /// `BOOKWATCH_WEBHOOK_BASIC_AUTH`: `user:password` required on deliveries.
    public var basicCredentials: String?
    /// `BOOKWATCH_WEBHOOK_MAX_BYTES`.
    public var bodyLimit = 1 << 20

    /// The defaults.
    public init() {}

    /// Reads the environment (flags are applied by the caller afterwards and take precedence).
    public static func resolve(
        environment env: [String: String],
        host: String?,
        port: Int?
    ) throws(ConfigurationError)
        -> IngressSettings
    {
        var settings = IngressSettings()
        settings.host = host ?? env["BOOKWATCH_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? settings.host
        if let port {
            settings.port = port
        } else if let text = env["BOOKWATCH_PORT"], !text.isEmpty {
            guard let parsed = Int(text) else { throw ConfigurationError(setting: "BOOKWATCH_PORT", problem: "'\(text)' is not a port number") }
            settings.port = parsed
        }
        guard (0...65535).contains(settings.port) else {
            throw ConfigurationError(setting: port != nil ? "--port" : "BOOKWATCH_PORT", problem: "\(settings.port) is not a port (0-65535)")
        }
        if let text = env["BOOKWATCH_ADMIN_PORT"], !text.isEmpty {
            guard let parsed = Int(text), (1...65535).contains(parsed) else {
                throw ConfigurationError(setting: "BOOKWATCH_ADMIN_PORT", problem: "'\(text)' is not a port (1-65535)")
            }
            guard parsed != settings.port else {
                throw ConfigurationError(setting: "BOOKWATCH_ADMIN_PORT", problem: "\(parsed) is also the public port (BOOKWATCH_PORT)")
            }
            settings.adminPort = parsed
        }
        if let text = env["BOOKWATCH_PUBLIC_URL"], !text.isEmpty {
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
                throw ConfigurationError(setting: "BOOKWATCH_PUBLIC_URL", problem: "'\(text)' is not an http(s) URL")
            }
            settings.publicURL = text
        }
        settings.webhookSecrets = try secrets(env, name: "BOOKWATCH_WEBHOOK_SECRET")
        for (index, secret) in settings.webhookSecrets.enumerated() {
            guard (WebhookVerifier.minimumSecretLength...WebhookVerifier.maximumSecretLength).contains(secret.count) else {
                throw ConfigurationError(
                    setting: "BOOKWATCH_WEBHOOK_SECRET",
                    problem: "secret #\(index + 1) is \(secret.count) characters; Ocrolus secrets are 16 to 128"
                )
            }
        }
        if let text = env["BOOKWATCH_WEBHOOK_TOLERANCE_SECONDS"], !text.isEmpty {
            // At most an hour: a replayed delivery is refused as a duplicate only while its inbox
            // row lasts (pruned after `BOOKWATCH_RETAIN_DAYS`, at least a day).
            guard let seconds = TimeInterval(text), seconds > 0, seconds <= 3600 else {
                throw ConfigurationError(
                    setting: "BOOKWATCH_WEBHOOK_TOLERANCE_SECONDS",
                    problem: "'\(text)' is not a positive number of seconds, at most 3600"
                )
            }
            settings.signatureTolerance = seconds
        }
        settings.allow = try cidrs(env, name: "BOOKWATCH_WEBHOOK_ALLOW")
        settings.trustedProxies = try cidrs(env, name: "BOOKWATCH_TRUSTED_PROXIES")
        if let credentials = try secrets(env, name: "BOOKWATCH_WEBHOOK_BASIC_AUTH", split: false).first {
            guard let colon = credentials.firstIndex(of: ":"), colon != credentials.startIndex else {
                throw ConfigurationError(setting: "BOOKWATCH_WEBHOOK_BASIC_AUTH", problem: "expected user:password")
            }
            settings.basicCredentials = credentials
        }
        if let text = env["BOOKWATCH_WEBHOOK_MAX_BYTES"], !text.isEmpty {
            guard let bytes = Int(text), bytes > 0 else {
                throw ConfigurationError(setting: "BOOKWATCH_WEBHOOK_MAX_BYTES", problem: "'\(text)' is not a positive number of bytes")
            }
            settings.bodyLimit = bytes
        }
        return settings
    }

    /// `NAME` (comma-separated when `split`) or the contents of the file `NAME_FILE`.
    static func secrets(_ env: [String: String], name: String, split: Bool = true) throws(ConfigurationError) -> [String] {
        var raw = env[name].flatMap { $0.isEmpty ? nil : $0 }
        if let path = env[name + "_FILE"], !path.isEmpty {
            guard raw == nil else { throw ConfigurationError(setting: name + "_FILE", problem: "set either \(name) or \(name)_FILE, not both") }
            guard let contents = FileManager.default.contents(atPath: path), let text = String(data: contents, encoding: .utf8) else {
                throw ConfigurationError(setting: name + "_FILE", problem: "cannot read \(path)")
            }
            raw = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let raw else { return [] }
        let values = split ? raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } : [raw]
        return values.filter { !$0.isEmpty }
    }

    static func cidrs(_ env: [String: String], name: String) throws(ConfigurationError) -> [CIDR] {
        guard let text = env[name], !text.isEmpty else { return [] }
        var result: [CIDR] = []
        // `ocrolus` stands for Ocrolus's published source addresses.
        for entry in OcrolusWebhookSources.expanding(text) {
            guard let cidr = CIDR(entry) else { throw ConfigurationError(setting: name, problem: "'\(entry)' is not an IPv4 or IPv6 CIDR") }
            result.append(cidr)
        }
        return result
    }

    /// The verifier for the configured secrets, or nil when none is set.
    public func verifier() throws(ConfigurationError) -> WebhookVerifier? {
        guard !webhookSecrets.isEmpty else { return nil }
        do {
            return try WebhookVerifier(secrets: webhookSecrets, tolerance: signatureTolerance)
        } catch {
            throw ConfigurationError(setting: "BOOKWATCH_WEBHOOK_SECRET", problem: error.reason)
        }
    }

    /// The source and credential checks these settings ask for.
    public var accessPolicy: WebhookAccessPolicy {
        WebhookAccessPolicy(allow: allow, trustedProxies: trustedProxies, basicCredentials: basicCredentials)
    }

    /// Checks that `host:port` (and the admin port, when set) can be bound now (the servers bind
    /// them a moment later).
    public func checkPortFree() throws(ConfigurationError) {
        try checkFree(port: port, setting: "--port/BOOKWATCH_PORT \(host):\(port)")
        if let adminPort { try checkFree(port: adminPort, setting: "--admin-port/BOOKWATCH_ADMIN_PORT \(host):\(adminPort)") }
    }

    private func checkFree(port: Int, setting: String) throws(ConfigurationError) {
        guard port != 0 else { return }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else {
            throw ConfigurationError(setting: "--host/BOOKWATCH_HOST \(host)", problem: "cannot resolve the address")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        if bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
            throw ConfigurationError(setting: setting, problem: String(cString: strerror(errno)))
        }
    }

    /// The effective settings for the startup log line, secrets redacted.
    public var redactedSummary: String {
        [
            "listen=\(host):\(port)",
            "admin=\(adminPort.map { "\(host):\($0)" } ?? "same listener")",
            "webhook_secrets=\(webhookSecrets.isEmpty ? "none" : "\(webhookSecrets.count) (redacted)")",
            "webhook_allow=\(allow.isEmpty ? "any" : allow.map(\.description).joined(separator: ","))",
            "trusted_proxies=\(trustedProxies.isEmpty ? "none" : trustedProxies.map(\.description).joined(separator: ","))",
            "basic_auth=\(basicCredentials == nil ? "off" : "on (redacted)")",
            "webhook_max_bytes=\(bodyLimit)",
            "signature_tolerance_s=\(Int(signatureTolerance))",
        ].joined(separator: " ")
    }
}
