import Logging
import OcrolusAPI
import ServiceLifecycle

/// `serve`'s startup check of the organisation's webhooks (`bookwatch webhooks check`, logged):
/// once, in the background, then idle until shutdown. Credentials that may not read the webhook
/// settings, or an Ocrolus that does not answer, make it say so once at notice level: the check
/// is advice, never a reason not to run.
public struct WebhookSetupReport: Service {
    let client: OcrolusClient
    let publicURL: String?
    let secretConfigured: Bool
    let logger: Logger

    /// A check of the webhooks `client`'s organisation has registered.
    public init(client: OcrolusClient, publicURL: String?, secretConfigured: Bool, logger: Logger) {
        self.client = client
        self.publicURL = publicURL
        self.secretConfigured = secretConfigured
        self.logger = logger
    }

    /// Checks once and logs what it found; then waits for shutdown.
    public func run() async throws {
        // Shutdown does not wait for a slow Ocrolus: the check is advice.
        try? await cancelWhenGracefulShutdown { await report() }
        try? await gracefulShutdown()
    }

    /// Reads the registered webhooks and logs one line per gap (warning), or one line saying the
    /// setup is complete; answers the check (nil when the webhooks could not be read).
    @discardableResult
    public func report() async -> WebhookSetupCheck? {
        let registered: [RegisteredWebhook]
        do {
            registered = try await client.webhooks()
        } catch is CancellationError {
            return nil
        } catch {
            logger.notice("webhook setup not checked: the webhook settings could not be read", metadata: ["error": "\(error)"])
            return nil
        }
        let check = WebhookSetupCheck(registered: registered, serviceURL: publicURL, secretConfigured: secretConfigured)
        for gap in check.gaps {
            logger.warning("webhook setup: \(gap.problem)", metadata: gap.webhookID.map { ["webhook_id": "\($0)"] } ?? [:])
        }
        for note in check.notes { logger.info("webhook setup: \(note)") }
        if check.gaps.isEmpty {
            logger.info("webhook setup complete", metadata: ["webhooks": "\(check.serving.map(\.id).joined(separator: ","))"])
        }
        return check
    }
}
