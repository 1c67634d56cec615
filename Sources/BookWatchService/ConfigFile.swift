import Foundation

/// The optional config file of `serve` (`--config PATH` or `BOOKWATCH_CONFIG`): `NAME=value` lines
/// with the environment variable names, `#` comments and blank lines allowed. Precedence: flags >
/// environment > file > defaults.
public enum ConfigFile {
    /// Every name the file may set.
    public static let knownNames: Set<String> = [
        "OCROLUS_API_URL", "OCROLUS_AUTH_URL", "OCROLUS_CLIENT_ID", "OCROLUS_CLIENT_SECRET", "OCROLUS_CLIENT_SECRET_FILE",
        "BOOKWATCH_DATABASE", "BOOKWATCH_HOST", "BOOKWATCH_PORT", "BOOKWATCH_WEBHOOK_SECRET", "BOOKWATCH_WEBHOOK_SECRET_FILE",
        "BOOKWATCH_WEBHOOK_ALLOW", "BOOKWATCH_TRUSTED_PROXIES", "BOOKWATCH_WEBHOOK_BASIC_AUTH", "BOOKWATCH_WEBHOOK_BASIC_AUTH_FILE",
        "BOOKWATCH_WEBHOOK_MAX_BYTES", "BOOKWATCH_WEBHOOK_TOLERANCE_SECONDS", "BOOKWATCH_RATE_LIMIT", "BOOKWATCH_RATE_BURST",
        "BOOKWATCH_POLL_MIN_SECONDS", "BOOKWATCH_POLL_MAX_SECONDS", "BOOKWATCH_ANALYTICS", "BOOKWATCH_AUTO_TRACK",
        "BOOKWATCH_WATCH_COMPLETED_HOURS", "BOOKWATCH_ANALYTICS_RETRY_MAX_SECONDS", "BOOKWATCH_ON_COMPLETE",
    ]

    /// Parses the file's text; errors name the line.
    public static func parse(_ text: String, path: String) throws(ConfigurationError) -> [String: String] {
        var values: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigurationError(setting: "\(path):\(index + 1)", problem: "expected NAME=value")
            }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            guard knownNames.contains(name) else {
                throw ConfigurationError(setting: "\(path):\(index + 1)", problem: "unknown setting '\(name)'")
            }
            values[name] = value
        }
        return values
    }

    /// The environment to resolve settings from: the file's values under the real environment.
    public static func merged(environment: [String: String], path: String?) throws(ConfigurationError) -> [String: String] {
        guard let path = path ?? environment["BOOKWATCH_CONFIG"].flatMap({ $0.isEmpty ? nil : $0 }) else { return environment }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(setting: "--config/BOOKWATCH_CONFIG \(path)", problem: "cannot read the file")
        }
        return try parse(text, path: path).merging(environment) { _, fromEnvironment in fromEnvironment }
    }
}
