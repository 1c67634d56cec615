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
