import ArgumentParser
import BookWatchService
import Foundation

/// `bookwatch config`: the effective configuration of `serve` with the same flags, environment
/// and config file: every setting, its value (secrets redacted) and where it came from. Exits 2,
/// naming the setting, when `serve` would refuse to start with it.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the effective configuration of serve (secrets redacted) and the source of each value."
    )

    @OptionGroup var options: ServeOptions
    @Flag(help: "Print JSON: {\"settings\": [{\"name\", \"value\", \"source\", \"secret\"}], \"valid\", \"error\"}.") var json = false

    func run() async throws {
        let context = CLIContext.current
        let layers = try options.layers(context)
        let environment = layers.merged
        var problem: ConfigurationError?
        do {
            _ = try IngressSettings.resolve(environment: environment, host: nil, port: nil).verifier()
            _ = try WatcherSettings.resolve(environment: environment)
            _ = try ServeOptions.logging(environment)
        } catch {
            problem = error
        }
        let entries = layers.effective
        if json {
            struct Output: Encodable {
                struct Setting: Encodable {
                    let name: String
                    let value: String?
                    let source: String
                    let secret: Bool
                }
                let settings: [Setting]
                let valid: Bool
                let error: String?
            }
            let output = Output(
                settings: entries.map { .init(name: $0.name, value: $0.value, source: $0.source.description, secret: $0.secret) },
                valid: problem == nil,
                error: problem?.description
            )
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            context.print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            let width = entries.map(\.name.count).max() ?? 0
            let valueWidth = min(48, entries.map { ($0.value ?? "-").count }.max() ?? 0)
            context.print(
                "NAME".padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                    + "VALUE".padding(toLength: valueWidth, withPad: " ", startingAt: 0) + "  SOURCE"
            )
            for entry in entries {
                let value = entry.value ?? "-"
                context.print(
                    entry.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                        + value.padding(toLength: max(valueWidth, value.count), withPad: " ", startingAt: 0) + "  " + entry.source.description
                )
            }
            if let path = layers.filePath { context.print("config file: \(path)") }
        }
        if let problem { throw CLIError.usage(problem.description) }
    }
}
