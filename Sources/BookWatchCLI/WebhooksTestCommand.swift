import ArgumentParser
import BookWatchClocks
import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI

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
