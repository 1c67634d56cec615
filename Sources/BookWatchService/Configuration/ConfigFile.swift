import Foundation

/// The optional config file of `serve` (`--config PATH` or `BOOKWATCH_CONFIG`): `NAME=value` lines
/// with the environment variable names, `#` comments and blank lines allowed. Precedence: flags >
/// environment > file > defaults.
public enum ConfigFile {
    /// Every name the file may set.
    public static var knownNames: Set<String> { SettingCatalog.fileNames }  // computed once, there

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
}
