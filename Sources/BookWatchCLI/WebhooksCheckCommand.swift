import ArgumentParser
import BookWatchClocks
import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI

/// `bookwatch webhooks check`.
struct WebhooksCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Compare the registered webhooks with what bookwatch needs; exit 1 naming each gap."
    )

    @OptionGroup var api: WebhookAPIOptions
    @Option(help: "The URL Ocrolus should deliver to (default: BOOKWATCH_PUBLIC_URL; unset: any URL ending in /webhooks/ocrolus).") var url: String?

    func validate() throws {
        if let url { try checkWebhookURL(url, option: "--url") }
    }

    /// The check, for `--json`.
    struct Report: Encodable {
        var ok: Bool
        var webhooks: [RegisteredWebhook]
        var gaps: [WebhookSetupCheck.Gap]
        var notes: [String]
    }

    func run() async throws {
        let context = CLIContext.current
        let layers = try api.layers(context)
        let ingress = try api.ingress(layers)
        let client = try api.client(context, layers: layers)
        let registered = try await api.ocrolus("listing the webhooks") { try await client.webhooks() }
        let check = WebhookSetupCheck(registered: registered, serviceURL: url ?? ingress.publicURL, secretConfigured: !ingress.webhookSecrets.isEmpty)
        if api.json {
            try api.printJSON(Report(ok: check.gaps.isEmpty, webhooks: check.serving.map(\.redacted), gaps: check.gaps, notes: check.notes), context)
        } else {
            for gap in check.gaps { context.print("gap: \(gap)") }
            for note in check.notes { context.print("note: \(note)") }
            if check.gaps.isEmpty {
                context.print(
                    "ok: webhook \(check.serving.map(\.id).joined(separator: ", ")) delivers every event bookwatch uses, and serve verifies signatures"
                )
            }
        }
        if !check.gaps.isEmpty { throw CLIError.runtime("\(check.gaps.count) gap(s) in the webhook setup") }
    }
}
