import ArgumentParser
import BookWatchClocks
import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI

/// `bookwatch webhooks register`.
struct WebhooksRegister: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register",
        abstract: "Register a webhook delivering to this service; by default it subscribes exactly the events bookwatch uses. Prints its id."
    )

    @OptionGroup var api: WebhookAPIOptions
    @Option(help: "Where Ocrolus delivers (default: BOOKWATCH_PUBLIC_URL), e.g. https://bookwatch.example.com/webhooks/ocrolus.") var url: String?
    @Option(help: "The webhook's description at Ocrolus.") var description = "bookwatch"
    @Option(help: "Comma-separated event names (default: \(WebhookSubscription.defaultEventNames.joined(separator: ","))).") var events: String?

    func validate() throws {
        if let url { try checkWebhookURL(url, option: "--url") }
        if let events { _ = try parseEventList(events) }
    }

    func run() async throws {
        let context = CLIContext.current
        let layers = try api.layers(context)
        let configured = try api.ingress(layers).publicURL
        guard let url = url ?? configured else {
            throw CLIError.usage("register needs --url or BOOKWATCH_PUBLIC_URL: the URL Ocrolus delivers to (ending in /webhooks/ocrolus)")
        }
        let names = try events.map(parseEventList) ?? WebhookSubscription.defaultEventNames
        let client = try api.client(context, layers: layers)
        let existing = try await api.ocrolus("listing the webhooks") { try await client.webhooks() }
        if let same = existing.first(where: { WebhookSetupCheck.normalized($0.url) == WebhookSetupCheck.normalized(url) }) {
            throw CLIError.runtime(
                "webhook \(same.id) already delivers to \(url): change it with bookwatch webhooks update \(same.id), or delete it first"
            )
        }
        let webhook = try await api.ocrolus("registering the webhook") {
            try await client.registerWebhook(url: url, description: description, events: names)
        }
        if api.json { return try api.printJSON(webhook.redacted, context) }
        context.print(webhook.id)
        context.printError("registered webhook \(webhook.id): \(webhook.eventNames.count) events to \(webhook.redacted.url)")
        for need in WebhookSubscription.missing(from: webhook.eventNames) {
            context.printError("  without \(need.event.name): \(need.withoutIt)")
        }
        context.printError(
            "next: bookwatch webhooks rotate-secret \(webhook.id) --secret-file PATH (sets the signing secret), then bookwatch webhooks test \(webhook.id)"
        )
    }
}

/// `bookwatch webhooks list`.
struct WebhooksList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the organisation's webhooks.")

    @OptionGroup var api: WebhookAPIOptions

    func run() async throws {
        let context = CLIContext.current
        let client = try api.client(context)
        let webhooks = try await api.ocrolus("listing the webhooks") { try await client.webhooks() }.map(\.redacted)
        if api.json { return try api.printJSON(webhooks, context) }
        if webhooks.isEmpty { return context.print("no webhooks registered (bookwatch webhooks register --url URL)") }
        let idWidth = max(2, webhooks.map(\.id.count).max() ?? 0)
        let urlWidth = max(3, webhooks.map(\.url.count).max() ?? 0)
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        context.print("\(pad("ID", idWidth))  \(pad("URL", urlWidth))  EVENTS  SECRET   LACKS")
        for webhook in webhooks {
            let secret = webhook.hasSecret.map { $0 ? "set" : "none" } ?? "?"
            let lacks = WebhookSubscription.missing(from: webhook.eventNames).map(\.event.name).joined(separator: ",")
            context.print(
                "\(pad(webhook.id, idWidth))  \(pad(webhook.url, urlWidth))  \(pad(String(webhook.eventNames.count), 6))  \(pad(secret, 7))  \(lacks.isEmpty ? "-" : lacks)"
            )
        }
    }
}

/// `bookwatch webhooks show ID`.
struct WebhooksShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one webhook.")

    @OptionGroup var api: WebhookAPIOptions
    @Argument(help: "The webhook id.") var id: String

    func run() async throws {
        let context = CLIContext.current
        let client = try api.client(context)
        try api.print(try await api.ocrolus("reading webhook \(id)") { try await client.webhook(id: id) }, context)
    }
}

/// `bookwatch webhooks update ID`.
struct WebhooksUpdate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Change a webhook's URL, description or events (what is not given stays)."
    )

    @OptionGroup var api: WebhookAPIOptions
    @Argument(help: "The webhook id.") var id: String
    @Option(help: "The new delivery URL.") var url: String?
    @Option(help: "The new description.") var description: String?
    @Option(help: "The new comma-separated event list (replaces the old one).") var events: String?

    func validate() throws {
        guard url != nil || description != nil || events != nil else {
            throw ValidationError("update needs at least one of --url, --description, --events")
        }
        if let url { try checkWebhookURL(url, option: "--url") }
        if let events { _ = try parseEventList(events) }
    }

    func run() async throws {
        let context = CLIContext.current
        let client = try api.client(context)
        let names = try events.map(parseEventList)
        let webhook = try await api.ocrolus("updating webhook \(id)") {
            try await client.updateWebhook(id: id, url: url, description: description, events: names)
        }
        try api.print(webhook, context)
    }
}

/// `bookwatch webhooks delete ID`.
struct WebhooksDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a webhook (Ocrolus stops delivering to it).")

    @OptionGroup var api: WebhookAPIOptions
    @Argument(help: "The webhook id.") var id: String

    func run() async throws {
        let context = CLIContext.current
        let client = try api.client(context)
        try await api.ocrolus("deleting webhook \(id)") { try await client.deleteWebhook(id: id) }
        if api.json { return try api.printJSON(["deleted": id], context) }
        context.print("deleted webhook \(id)")
    }
}

/// `bookwatch webhooks events ID`.
struct WebhooksEvents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "What Ocrolus reports it delivered to a webhook, and what the receiver answered."
    )

    @OptionGroup var api: WebhookAPIOptions
    @Argument(help: "The webhook id.") var id: String

    func run() async throws {
        let context = CLIContext.current
        let client = try api.client(context)
        let reports = try await api.ocrolus("reading the deliveries of webhook \(id)") { try await client.webhookEvents(id: id) }
        if api.json { return try api.printJSON(reports, context) }
        if reports.isEmpty { return context.print("Ocrolus reports no deliveries to webhook \(id)") }
        context.print("SENT_AT               STATUS  ATTEMPT  EVENT                              REQUEST_ID")
        for report in reports {
            let status = report.httpStatus.map { $0 == 0 ? "none" : String($0) } ?? "?"
            context.print(
                [
                    (report.sentAt ?? "?").padding(toLength: 20, withPad: " ", startingAt: 0),
                    status.padding(toLength: 6, withPad: " ", startingAt: 0),
                    (report.attempt.map(String.init) ?? "?").padding(toLength: 7, withPad: " ", startingAt: 0),
                    (report.eventName ?? "?").padding(toLength: max(33, report.eventName?.count ?? 0), withPad: " ", startingAt: 0),
                    report.requestID ?? "?",
                ].joined(separator: "  ")
            )
        }
        let failed = reports.filter { ($0.httpStatus ?? 200) != 200 }.count
        if failed > 0 {
            context.print("\(failed) of \(reports.count) attempts were not answered 200 (Ocrolus retries about 3 times, then drops the event)")
        }
    }
}
