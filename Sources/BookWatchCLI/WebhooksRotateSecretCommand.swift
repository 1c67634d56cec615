import ArgumentParser
import BookWatchClocks
import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI

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
