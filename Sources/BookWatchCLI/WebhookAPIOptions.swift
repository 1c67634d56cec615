import ArgumentParser
import BookWatchClocks
import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI

/// What every `webhooks` subcommand shares: where the settings come from, and `--json`.
struct WebhookAPIOptions: ParsableArguments {
    @Option(
        name: .customLong("config"),
        help: ArgumentHelp("A file of NAME=value lines, as serve reads (env BOOKWATCH_CONFIG); the environment overrides it.", valueName: "path")
    )
    var configFile: String?
    @Flag(help: "Print JSON (one document) instead of text.") var json = false

    /// The settings as `serve` would see them (flags aside).
    func layers(_ context: CLIContext) throws -> LayeredConfiguration {
        do {
            return try LayeredConfiguration(environment: context.environment, configPath: configFile)
        } catch {
            throw CLIError.usage(error.description)
        }
    }

    /// The client, from the settings as `serve` would see them.
    func client(_ context: CLIContext) throws -> OcrolusClient { try client(context, layers: try layers(context)) }

    /// The client, from the same settings `serve` uses; a missing credential is a usage error.
    func client(_ context: CLIContext, layers: LayeredConfiguration) throws -> OcrolusClient {
        let settings: WatcherSettings
        do {
            settings = try WatcherSettings.resolve(environment: layers.merged)
        } catch {
            throw CLIError.usage(error.description)
        }
        let clock = SystemClock()
        var logger = Logger(label: "bookwatch.webhooks")
        logger.logLevel = .error
        return OcrolusClient(
            configuration: settings.ocrolusConfiguration,
            transport: context.transport ?? AsyncHTTPClientTransport(),
            limiter: RateLimiter(rate: settings.rate, burst: settings.burst, clock: clock),
            clock: clock,
            logger: logger
        )
    }

    /// The ingress settings (`BOOKWATCH_PUBLIC_URL`, the secrets, the ports).
    func ingress(_ layers: LayeredConfiguration) throws -> IngressSettings {
        do {
            return try IngressSettings.resolve(environment: layers.merged, host: nil, port: nil)
        } catch {
            throw CLIError.usage(error.description)
        }
    }

    /// Runs one call to Ocrolus; its failure is a runtime error (exit 1) naming what failed.
    func ocrolus<T>(_ what: String, _ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError.runtime("\(what): \(error)")
        }
    }

    /// Prints `value` as one JSON document.
    func printJSON(_ value: some Encodable, _ context: CLIContext) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        context.print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// One webhook, as text or JSON.
    func print(_ webhook: RegisteredWebhook, _ context: CLIContext) throws {
        let webhook = webhook.redacted  // a password in the URL (HTTP Basic) is never printed
        if json { return try printJSON(webhook, context) }
        context.print("id           \(webhook.id)")
        context.print("url          \(webhook.url)")
        context.print("description  \(webhook.description)")
        context.print("events       \(webhook.eventNames.joined(separator: ", "))")
        context.print("secret       \(webhook.hasSecret.map { $0 ? "set" : "not set" } ?? "not reported by Ocrolus")")
        let missing = WebhookSubscription.missing(from: webhook.eventNames)
        if !missing.isEmpty {
            context.print("lacks        \(missing.map(\.event.name).joined(separator: ", ")) (bookwatch webhooks check says what each costs)")
        }
    }
}

/// A comma-separated event list, each name checked for shape (Ocrolus adds events: unknown
/// names are allowed).
func parseEventList(_ text: String) throws -> [String] {
    let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    guard !names.isEmpty else { throw ValidationError("--events is empty: name at least one event") }
    for name in names where name.contains(where: { $0.isWhitespace }) {
        throw ValidationError("--events: '\(name)' is not an event name")
    }
    return names
}

/// An http(s) URL with a host.
func checkWebhookURL(_ text: String, option: String) throws {
    guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
        throw ValidationError("\(option) '\(text)' is not an http(s) URL")
    }
}
