import Foundation

/// The addresses Ocrolus publishes as the sources of its webhook deliveries (ocrolus-api.md; the
/// list may grow: a release updates it). `BOOKWATCH_WEBHOOK_ALLOW=ocrolus` stands for them.
public enum OcrolusWebhookSources {
    /// The preset's name in `BOOKWATCH_WEBHOOK_ALLOW`.
    public static let preset = "ocrolus"

    /// The published source addresses.
    public static let addresses = [
        "18.205.30.63", "18.208.79.114", "18.213.224.210", "18.233.250.22", "35.173.140.133", "35.174.183.80", "54.164.238.206",
    ]

    /// Whether a comma-separated allowlist names the preset.
    public static func isNamed(in list: String) -> Bool {
        list.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == preset }
    }

    /// A comma-separated allowlist with the preset replaced by the addresses (other entries kept).
    public static func expanding(_ list: String) -> [String] {
        list.split(separator: ",").flatMap { part -> [String] in
            let entry = part.trimmingCharacters(in: .whitespaces)
            return entry.lowercased() == preset ? addresses : [entry]
        }
    }
}
