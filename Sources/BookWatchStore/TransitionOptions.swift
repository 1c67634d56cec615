import BookWatchCore
import Foundation

/// What every transition of the moment shares (the input carries its own facts).
public struct TransitionOptions: Sendable {
    /// True when no webhook at all has arrived for a long while, or webhooks miss document
    /// changes (polling takes over).
    public var webhooksSilent: Bool
    /// True while webhooks are measured reliable and the operator allows trusting them
    /// (`BOOKWATCH_WEBHOOK_TRUST`): a finished `book.verified` body finishes the Book without a
    /// status call, and finished Books are polled ever more rarely (see `BookMachine.apply`,
    /// `PollSchedule`). False by default: hints stay hints.
    public var webhooksTrusted: Bool
    /// While webhooks are silent: the interval between a processing Book's polls that the request
    /// budget allows (`PollSchedule.silentInterval(processing:rate:)`); nil when not known.
    public var silentInterval: TimeInterval?
    /// While webhooks are not trusted: the shortest interval between a finished Book's retention
    /// polls that the request budget allows (`PollSchedule.finishedInterval(finished:rate:)`);
    /// nil when not known.
    public var finishedInterval: TimeInterval?

    /// What transitions of the moment share.
    public init(
        webhooksSilent: Bool = false,
        webhooksTrusted: Bool = false,
        silentInterval: TimeInterval? = nil,
        finishedInterval: TimeInterval? = nil
    ) {
        self.webhooksSilent = webhooksSilent
        self.webhooksTrusted = webhooksTrusted
        self.silentInterval = silentInterval
        self.finishedInterval = finishedInterval
    }
}
