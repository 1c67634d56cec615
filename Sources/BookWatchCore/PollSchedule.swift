import struct Foundation.Date
import struct Foundation.TimeInterval

/// Turns a `PollCadence` into the time of the next scheduled poll (pure; jitter is an input).
///
/// - `active`: between half the maximum and the maximum while webhooks for the Book keep arriving
///   (they will tell us when it finishes; each one pushes the poll out again); full jitter between
///   the minimum and a quarter of the maximum once they have been quiet for longer than the
///   maximum; full jitter up to twice the minimum when webhooks have stopped arriving altogether
///   (polling takes over).
/// - `soon`: between one and two minima (a likely finish no status call has confirmed yet).
/// - `retention`: the maximum, less up to 10 % jitter so retention polls do not bunch up; while
///   webhooks are trusted (they announce a reopen's new document), as long as the Book has been
///   finished if that is longer, so polls come at about 1, 2, 4, 8... maxima after the finish:
///   about 9 polls over a week instead of 336 at the default 30 minutes. None at all once the Book
///   has been finished for longer than `retention` (`BOOKWATCH_WATCH_COMPLETED_HOURS`), so finished
///   Books stop costing API budget.
/// - `never`: nil.
public struct PollSchedule: Hashable, Sendable {
    public var minimum: TimeInterval
    public var maximum: TimeInterval
    /// How long a finished Book is still polled (to notice a reopen); nil means forever.
    public var retention: TimeInterval?

    public init(minimum: TimeInterval = 60, maximum: TimeInterval = 1800, retention: TimeInterval? = 168 * 3600) {
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
        self.retention = retention
    }

    /// - Parameters:
    ///   - unitRandom: a draw from `0..<1` (injected so tests are deterministic).
    ///   - webhooksSilent: true when no webhook at all has arrived for a long while.
    ///   - finishedAt: when the Book was last seen finished (for `retention`).
    ///   - webhooksTrusted: webhooks are measured reliable (for `retention`).
    public func nextPoll(
        cadence: PollCadence, lastWebhookAt: Date?, now: Date, webhooksSilent: Bool, unitRandom: Double,
        finishedAt: Date? = nil, webhooksTrusted: Bool = false
    ) -> Date? {
        let u = min(max(unitRandom, 0), 1)
        switch cadence {
        case .never:
            return nil
        case .soon:
            return now.addingTimeInterval(minimum * (1 + u))
        case .retention:
            let age = finishedAt.map { now.timeIntervalSince($0) } ?? 0
            let interval = webhooksTrusted ? max(maximum, age) : maximum
            let next = now.addingTimeInterval(interval * (1 - 0.1 * u))
            if let retention, let finishedAt, next.timeIntervalSince(finishedAt) > retention { return nil }
            return next
        case .active:
            let ceiling = activeCeiling(lastWebhookAt: lastWebhookAt, now: now, webhooksSilent: webhooksSilent)
            // While the Book's webhooks keep arriving they will say when it finishes: the poll is a
            // safety net between half the ceiling and the ceiling. Otherwise full jitter from the minimum.
            let floor = ceiling == maximum && !webhooksSilent ? max(minimum, maximum / 2) : minimum
            return now.addingTimeInterval(floor + u * (ceiling - floor))
        }
    }

    func activeCeiling(lastWebhookAt: Date?, now: Date, webhooksSilent: Bool) -> TimeInterval {
        if webhooksSilent { return min(maximum, 2 * minimum) }
        guard let lastWebhookAt, now.timeIntervalSince(lastWebhookAt) <= maximum else {
            return max(minimum, maximum / 4)
        }
        return maximum
    }
}
