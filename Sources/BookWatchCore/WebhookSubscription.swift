/// The webhook events bookwatch uses, why, and what a deployment loses without each.
///
/// `bookwatch webhooks register` subscribes exactly these by default; `bookwatch webhooks check`
/// names each one a registration lacks with its cost; the watcher's loss estimate counts only
/// the kinds a deployment receives. Every other event (classification, signals) changes nothing
/// bookwatch decides, so subscribing to it only costs deliveries.
public enum WebhookSubscription {
    /// One event bookwatch uses.
    public struct Need: Sendable, Equatable {
        /// The event (its org-level name is what is subscribed).
        public var event: WebhookEvent
        /// What bookwatch does with it.
        public var purpose: String
        /// What the deployment loses when the event is not subscribed (polling covers it, later).
        public var withoutIt: String
    }

    /// The events bookwatch uses, in the order a Book meets them.
    public static let needs: [Need] = [
        Need(
            event: .documentUploaded,
            purpose: "a Document was added: a finished Book reopened, or a new Book to track",
            withoutIt:
                "a Document added to a finished Book is found by its next poll (up to the maximum interval), so a reopen's analytics wait that long"
        ),
        Need(
            event: .documentVerified,
            purpose: "a Document finished: the Book's progress, and the evidence that webhooks arrive",
            withoutIt: "progress is learnt by polling, and the loss estimate cannot tell a quiet Book from lost deliveries of this kind"
        ),
        Need(
            event: .bookVerified,
            purpose: "every Document finished: the Book is confirmed and its analytics fetched at once",
            withoutIt: "a finish is found by polling only: up to one poll interval late"
        ),
        Need(
            event: .bookCompleted,
            purpose: "all tasks done, analytics ready: a job waiting on 425 is retried at once",
            withoutIt: "a job waiting on 425 retries on its own backoff (up to BOOKWATCH_ANALYTICS_RETRY_MAX_SECONDS late)"
        ),
        Need(
            event: .bookAnalyticsGenerated,
            purpose: "analytics generated: a job waiting on 425 is retried at once",
            withoutIt: "as book.completed: a waiting job retries on its own backoff"
        ),
    ]

    /// The org-level names `register` subscribes by default.
    public static var defaultEventNames: [String] { needs.map(\.event.name) }

    /// The needs a subscription to `eventNames` lacks (account-level names count as their
    /// org-level twins; a name bookwatch does not know is ignored).
    public static func missing(from eventNames: some Sequence<String>) -> [Need] {
        let subscribed = Set(eventNames.map { WebhookEvent(name: $0) })
        return needs.filter { !subscribed.contains($0.event) }
    }
}
