import ArgumentParser
import BookWatchClocks
import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI

/// `bookwatch webhooks ...`: Ocrolus's organisation-level webhooks, set up and checked from the
/// command line (docs/operations.md, "Webhook setup").
struct WebhooksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhooks",
        abstract: "Register, inspect, test and rotate Ocrolus's organisation-level webhooks; check them against what bookwatch needs.",
        discussion: """
            Uses OCROLUS_CLIENT_ID, OCROLUS_CLIENT_SECRET and OCROLUS_API_URL like serve (environment or --config). \
            Exit codes: 0 ok, 1 Ocrolus or the service failed (or check found gaps), 2 usage or configuration error.
            """,
        subcommands: [
            WebhooksRegister.self, WebhooksList.self, WebhooksShow.self, WebhooksUpdate.self, WebhooksDelete.self, WebhooksEvents.self,
            WebhooksTest.self, WebhooksRotateSecret.self, WebhooksCheck.self,
        ]
    )
}

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
            configuration: OcrolusConfiguration(
                apiBaseURL: settings.apiURL,
                tokenURL: settings.authURL,
                credentials: .init(clientID: settings.clientID, clientSecret: settings.clientSecret)
            ),
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

/// `bookwatch webhooks test ID`.
struct WebhooksTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Ask Ocrolus to send a test event to a webhook, then show whether the running service stored it (reads the inbox)."
    )

    @OptionGroup var api: WebhookAPIOptions
    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The webhook id.") var id: String
    @Option(help: "Seconds to wait for the delivery to be stored.") var wait: Double = 30

    func validate() throws {
        guard wait >= 0, wait.isFinite else { throw ValidationError("--wait must be a number of seconds, not \(wait)") }
    }

    /// What the test found, for `--json`.
    struct Outcome: Encodable {
        var webhookID: String
        var stored: Bool
        var requestID: String?
        var receivedAt: String?
        var signatureVerified: Bool?
        var waitedSeconds: Double

        enum CodingKeys: String, CodingKey {
            case webhookID = "webhook_id"
            case stored
            case requestID = "request_id"
            case receivedAt = "received_at"
            case signatureVerified = "signature_verified"
            case waitedSeconds = "waited_seconds"
        }
    }

    func run() async throws {
        let context = CLIContext.current
        let client = try api.client(context)
        guard let store = try await database.openExistingStore(context) else {
            throw CLIError.usage("\(database.resolvedPath(context).setting): no database there; test reads the inbox of the service's database")
        }
        let outcome = try await using(store) { store in
            let before = try await store.newestInboxID()
            try await api.ocrolus("asking Ocrolus to test webhook \(id)") { try await client.testWebhook(id: id) }
            // The documented test body names book_pk 0, which no real Book has.
            var waited = 0.0
            var cursor = before
            while true {
                let arrived = try await store.inboxDeliveries(after: cursor, limit: 500)
                cursor = arrived.last?.id ?? cursor
                if let test = arrived.first(where: { $0.delivery.bookPK == 0 && $0.delivery.bookUUID == nil }) {
                    return Outcome(
                        webhookID: id,
                        stored: true,
                        requestID: test.delivery.requestID,
                        receivedAt: BookStatusEntry.rfc3339(test.delivery.receivedAt),
                        signatureVerified: test.delivery.authenticated,
                        waitedSeconds: waited
                    )
                }
                if arrived.count == 500 { continue }  // more rows already there: read on before waiting
                if waited >= wait { return Outcome(webhookID: id, stored: false, waitedSeconds: waited) }
                let step = min(1, wait - waited)
                try await context.sleep(step)
                waited += step
            }
        }
        if api.json {
            try api.printJSON(outcome, context)
        } else if outcome.stored {
            context.print(
                "the test delivery reached the service: stored at \(outcome.receivedAt ?? "?") (request id \(outcome.requestID ?? "none"), "
                    + "\(outcome.signatureVerified == true ? "signature verified" : "not signed or not verified"))"
            )
        }
        if !outcome.stored {
            throw CLIError.runtime(
                "no test delivery was stored within \(Int(wait)) s. Look at bookwatch webhooks events \(id) (what the service answered), "
                    + "the webhook's URL, BOOKWATCH_WEBHOOK_ALLOW and BOOKWATCH_TRUSTED_PROXIES, and the signing secret"
            )
        }
    }
}

/// `bookwatch webhooks rotate-secret ID`.
struct WebhooksRotateSecret: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-secret",
        abstract: "Give a webhook a new signing secret without losing a delivery.",
        discussion: """
            The order: (1) this command generates a strong secret into --secret-file (mode 0600) and stops; \
            (2) add it to serve's BOOKWATCH_WEBHOOK_SECRET beside the current one (OLD,NEW) and restart every replica; \
            (3) run this command again: it checks that serve accepts the new secret (its /readyz lists the fingerprints of the secrets it accepts; \
            with replicas, give each one's admin URL with --service; when none answers, the configuration this command is given), \
            then rotates at Ocrolus, then says when the old secret may go.
            """
    )

    @OptionGroup var api: WebhookAPIOptions
    @Argument(help: "The webhook id.") var id: String
    @Option(
        name: .customLong("secret-file"),
        help: ArgumentHelp("Where the new secret is kept (created, mode 0600, when missing).", valueName: "path")
    )
    var secretFile: String
    @Option(
        help:
            "serve's base URL for /readyz, once per replica: each must accept the new secret (default: http://127.0.0.1 and BOOKWATCH_ADMIN_PORT, else BOOKWATCH_PORT)."
    )
    var service: [String] = []
    @Flag(name: .customLong("show-secret"), help: "Print the new secret (it is never printed otherwise).") var showSecret = false

    /// How long deliveries signed with the old secret may still arrive: Ocrolus retries about 3
    /// times over a few minutes; this leaves a margin.
    static let oldSecretGrace: TimeInterval = 30 * 60

    func validate() throws {
        for url in service { try checkWebhookURL(url, option: "--service") }
    }

    /// What the rotation did, for `--json`.
    struct Outcome: Encodable {
        var webhookID: String
        var fingerprint: String
        var acceptedBy: String
        var oldSecretRemovableAfter: String
        var secret: String?

        enum CodingKeys: String, CodingKey {
            case webhookID = "webhook_id"
            case fingerprint
            case acceptedBy = "accepted_by"
            case oldSecretRemovableAfter = "old_secret_removable_after"
            case secret
        }
    }

    func run() async throws {
        let context = CLIContext.current
        let layers = try api.layers(context)
        let ingress = try api.ingress(layers)
        let (secret, created) = try newSecret()
        let fingerprint = WebhookVerifier.fingerprint(secret)
        let bases = service.isEmpty ? ["http://127.0.0.1:\(ingress.adminPort ?? ingress.port)"] : service
        let transport = context.transport ?? AsyncHTTPClientTransport()
        var answered: [String] = []
        for base in bases {
            guard let accepted = await Self.readyzFingerprints(base: base, transport: transport) else { continue }
            guard accepted.contains(fingerprint) else { throw refusal("serve at \(base) does not accept it yet", created: created) }
            answered.append(base)
        }
        let acceptedBy: String
        if answered.count == bases.count {
            acceptedBy = "serve at \(answered.joined(separator: ", "))"
        } else if !answered.isEmpty {
            let silent = bases.filter { !answered.contains($0) }
            throw refusal("serve did not answer at \(silent.joined(separator: ", ")), so it cannot be known to accept it", created: created)
        } else if ingress.webhookSecrets.contains(secret) {
            acceptedBy =
                "the configuration given (serve did not answer at \(bases.joined(separator: ", ")): make sure it runs with this configuration)"
        } else {
            throw refusal("serve did not answer at \(bases.joined(separator: ", ")) and the configuration given does not list it", created: created)
        }
        let client = try api.client(context, layers: layers)
        try await api.ocrolus("rotating the secret of webhook \(id)") { try await client.rotateWebhookSecret(id: id, secret: secret) }
        let removable = BookStatusEntry.rfc3339(context.now().addingTimeInterval(Self.oldSecretGrace))
        if api.json {
            return try api.printJSON(
                Outcome(
                    webhookID: id,
                    fingerprint: fingerprint,
                    acceptedBy: acceptedBy,
                    oldSecretRemovableAfter: removable,
                    secret: showSecret ? secret : nil
                ),
                context
            )
        }
        context.print("webhook \(id) now signs with the new secret (fingerprint \(fingerprint)), accepted by \(acceptedBy).")
        context.print(
            "Deliveries signed with the old secret may still arrive as retries: remove it from BOOKWATCH_WEBHOOK_SECRET after \(removable), then restart serve."
        )
        if showSecret { context.print("secret: \(secret)") }
    }

    /// The secret in `--secret-file`, or a new one written there (created with mode 0600, never
    /// replacing a file that appeared meanwhile); whether it was created now.
    func newSecret() throws -> (String, Bool) {
        if FileManager.default.fileExists(atPath: secretFile) {
            guard let data = FileManager.default.contents(atPath: secretFile) else {
                throw CLIError.usage("--secret-file \(secretFile): cannot be read")
            }
            let secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard (WebhookVerifier.minimumSecretLength...WebhookVerifier.maximumSecretLength).contains(secret.count), !secret.contains(",") else {
                throw CLIError.usage("--secret-file \(secretFile): holds no secret of 16 to 128 characters without a comma")
            }
            return (secret, false)
        }
        let secret = WebhookVerifier.generateSecret()
        let fd = open(secretFile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CLIError.usage("--secret-file \(secretFile): cannot be created: \(String(cString: strerror(errno)))") }
        let bytes = Array((secret + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced else {
            unlink(secretFile)
            throw CLIError.runtime("--secret-file \(secretFile): cannot be written")
        }
        return (secret, true)
    }

    /// Why the rotation stops before Ocrolus is asked, and what to do (never the secret itself).
    func refusal(_ reason: String, created: Bool) -> CLIError {
        .runtime(
            """
            not rotated: the new secret (\(created ? "written to" : "in") \(secretFile)): \(reason). \
            Add it to serve's BOOKWATCH_WEBHOOK_SECRET beside the current one (BOOKWATCH_WEBHOOK_SECRET=OLD,NEW, or the same in \
            BOOKWATCH_WEBHOOK_SECRET_FILE), restart every serve, then run this command again with --secret-file \(secretFile).
            """
        )
    }

    /// The fingerprints `/readyz` lists, or nil when it cannot be read.
    static func readyzFingerprints(base: String, transport: any HTTPTransport) async -> Set<String>? {
        let url = (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/readyz"
        guard let response = try? await transport.send(OutgoingRequest(method: "GET", url: url, timeout: 5)),
            let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            let list = object["webhook_secrets"] as? String
        else { return nil }
        return Set(list.split(separator: ",").map(String.init))
    }
}

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
