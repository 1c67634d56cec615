import struct Foundation.Date

/// Where the Book came from when it is tracked.
public enum TrackSource: String, Hashable, Sendable {
    /// `bookwatch track`: look at once.
    case `operator`
    /// A webhook named an unknown Book and auto-track is on: wait for hints or the schedule.
    case webhook
    /// `bookwatch track --new`: the lender has just created the Book, so there is nothing to see
    /// yet: wait for hints or the schedule instead of spending a call now.
    case created
}

/// What one analytics attempt for a generation came to.
public enum AnalyticsOutcome: Hashable, Sendable {
    /// Every configured endpoint's result is stored.
    case stored
    /// HTTP 425 / code 9004: not yet; not a failure and not a retrieval.
    case notReady
    /// 5xx, 429, timeout, connection error: try again later.
    case transientError(String)
    /// Book gone, no permission, or attempts exhausted: give up with this reason.
    case permanentError(String)
}

/// An operator's (or auto-track's) command.
public enum OperatorCommand: Hashable, Sendable {
    case track(TrackSource)
    case untrack
    case retry
}

/// Everything that can happen to a Book, each with what its transition needs beyond the machine
/// (when an answer was asked, the inbox row of a hint, the claim of an analytics outcome): the
/// machine reads the first value, the store the second.
public enum BookInput: Hashable, Sendable {
    /// An authoritative status read.
    case snapshot(BookSnapshot, PollAnswer = PollAnswer())
    /// A webhook about this Book: a hint, never the truth.
    case webhook(WebhookHint, HintDelivery = HintDelivery())
    /// The outcome of an analytics attempt for a generation.
    case analytics(generation: Int, AnalyticsOutcome, JobReport = JobReport())
    case command(OperatorCommand)
    /// The status endpoint refused this Book for good (403/2102, another 4xx with an Ocrolus code):
    /// the Book is marked `failed` with the reason; `retry` watches it again.
    case pollRefused(String, PollAnswer = PollAnswer())
}
