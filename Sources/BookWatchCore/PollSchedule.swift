import struct Foundation.Date
import struct Foundation.TimeInterval
import func Foundation.pow

/// The poll policy, all of it (pure; jitter is always an input drawn from the injected random
/// source): when a Book is next polled for each `PollCadence` (`nextPoll`), how a transition's
/// poll actions change the pending poll (`apply(_:to:...)`), how far polls are pulled in when
/// webhooks stop being trusted (`tightened`), how fresh a status answer must be for a job to
/// skip its confirming poll (`confirmFreshness`), and how failed polls are spaced (`retryDelay`).
/// The stores only read and write what this decides.
///
/// Cadences:
/// - `active`: between half the maximum and the maximum while webhooks for the Book keep arriving
///   (they will tell us when it finishes; each one pushes the poll out again); full jitter between
///   the minimum and a quarter of the maximum once they have been quiet for longer than the
///   maximum; when webhooks have stopped arriving altogether (polling takes over), every
///   `silentInterval` less up to 10 % (sized to the request budget), or with full jitter up to
///   twice the minimum when the budget is not known.
/// - `soon`: between one and two minima (a likely finish no status call has confirmed yet).
/// - `retention`: the maximum, less up to 10 % jitter so retention polls do not bunch up; while
///   webhooks are trusted (they announce a reopen's new document), as long as the Book has been
///   finished and at least `trustedRetentionStart` maxima, so polls come at about 4, 8, 16...
///   maxima after the finish: 7 polls over a week instead of 336 at the default 30 minutes (the
///   retrieval's view after is the first look at the finished Book). While webhooks are not
///   trusted, never shorter than the interval at which all the finished Books' polls take
///   `finishedPollShare` of the request rate (`finishedInterval(finished:rate:)`, when known), so
///   Books finished within the window never crowd out the Books still processing (trusted, the
///   doubling costs far less). None at all once the Book has been
///   finished for longer than `retention` (`BOOKWATCH_WATCH_COMPLETED_HOURS`), so finished Books
///   stop costing API budget.
/// - `afterGone`: a deleted Book, doubling like a trusted retention poll but from one maximum,
///   dated from the first answer that showed it gone (`goneSince`): about 1, 2, 4... maxima after
///   it, within `retention`.
/// - `never`: nil.
public struct PollSchedule: Hashable, Sendable {
    /// The shortest interval between scheduled polls of a Book (`BOOKWATCH_POLL_MIN_SECONDS`).
    public var minimum: TimeInterval
    /// The longest interval between scheduled polls of a Book (`BOOKWATCH_POLL_MAX_SECONDS`).
    public var maximum: TimeInterval
    /// How long a finished Book is still polled (to notice a reopen); nil means forever.
    public var retention: TimeInterval?

    /// A policy with these intervals (`retention` nil: finished Books are not polled for reopens).
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
    ///   - silentInterval: while webhooks are silent, the interval between a processing Book's
    ///     polls the request budget allows (`silentInterval(processing:rate:)`); nil: not known.
    ///   - finishedInterval: while webhooks are not trusted, the shortest interval between a
    ///     finished Book's retention polls the request budget allows
    ///     (`finishedInterval(finished:rate:)`); nil: not known.
    ///   - goneSince: for `afterGone`, when the Book was first seen gone (nil: no poll).
    public func nextPoll(
        cadence: PollCadence,
        lastWebhookAt: Date?,
        now: Date,
        webhooksSilent: Bool,
        unitRandom: Double,
        finishedAt: Date? = nil,
        webhooksTrusted: Bool = false,
        silentInterval: TimeInterval? = nil,
        finishedInterval: TimeInterval? = nil,
        goneSince: Date? = nil
    ) -> Date? {
        let u = min(max(unitRandom, 0), 1)
        switch cadence {
        case .never:
            return nil
        case .afterGone:
            // As a trusted retention poll, dated from the first answer that showed it gone.
            guard let goneSince else { return nil }
            let next = now.addingTimeInterval(max(maximum, now.timeIntervalSince(goneSince)) * (1 - 0.1 * u))
            if let retention, next.timeIntervalSince(goneSince) > retention { return nil }
            return next
        case .soon:
            return now.addingTimeInterval(minimum * (1 + u))
        case .retention:
            let age = finishedAt.map { now.timeIntervalSince($0) } ?? 0
            // The first trusted poll waits four maxima, but never past the end of a shorter window.
            let left = retention.map { $0 - age } ?? .infinity
            let interval = webhooksTrusted ? max(maximum, age, min(Self.trustedRetentionStart * maximum, left)) : max(maximum, finishedInterval ?? 0)
            let next = now.addingTimeInterval(interval * (1 - 0.1 * u))
            if let retention, let finishedAt, next.timeIntervalSince(finishedAt) > retention { return nil }
            return next
        case .active:
            if webhooksSilent, let silentInterval {
                // Polling has taken over: each Book at the interval the budget allows, with only
                // enough jitter to keep them from bunching, so a finish waits at most one interval.
                return now.addingTimeInterval(max(minimum, silentInterval * (1 - 0.1 * u)))
            }
            let ceiling = activeCeiling(lastWebhookAt: lastWebhookAt, now: now, webhooksSilent: webhooksSilent)
            // While the Book's webhooks keep arriving they will say when it finishes: the poll is a
            // safety net between half the ceiling and the ceiling. Otherwise full jitter from the minimum.
            let floor = ceiling == maximum && !webhooksSilent ? max(minimum, maximum / 2) : minimum
            return now.addingTimeInterval(floor + u * (ceiling - floor))
        }
    }

    /// The share of the request rate the polls of Books still processing may take while webhooks
    /// are silent; the rest is for finished Books' polls (`finishedPollShare`), retrievals and
    /// their views after, and hints.
    public static let silentPollShare = 0.8

    /// The share of the request rate the retention polls of finished Books may take, on average
    /// (`finishedInterval(finished:rate:)`): with `silentPollShare`, a tenth is left for
    /// retrievals, their views after, and hints.
    public static let finishedPollShare = 0.1

    /// While webhooks are trusted, a finished Book's first retention poll comes this many maxima
    /// after the finish (2 hours at the default maximum), then each one as long again as the Book
    /// has been finished. A reopen announces itself by several events (upload, classification,
    /// verification, the Book's own), each retried by Ocrolus; losing all of them while the
    /// loss estimate finds webhooks reliable takes an outage or lossy webhooks: lossy ones pull
    /// these polls in to the maximum at once (`tightened`), an outage after an hour of silence (a
    /// suspected outage first pulls in only the Books processing). Never past the end of a
    /// retention window shorter than this. The retrieval's view after has just looked at the Book.
    public static let trustedRetentionStart = 4.0

    /// The shortest interval between a finished Book's retention polls: `finished` Books (those
    /// within their retention window) polled, at a mean of 0.95 of the interval (`nextPoll` takes
    /// up to a tenth off), with `finishedPollShare` of `rate` requests/s; never less than the
    /// maximum. At the defaults (5 requests/s, 30 minutes) it is the maximum up to about 850 such
    /// Books; 7,000 (1,000 Books a day, a week's window) are polled every 4.1 hours, 0.5
    /// requests/s, instead of every 30 minutes (less the jitter), 4.1 requests/s.
    public func finishedInterval(finished: Int, rate: Double) -> TimeInterval {
        guard rate > 0, rate.isFinite else { return maximum }
        return max(maximum, Double(max(finished, 0)) / (0.95 * Self.finishedPollShare * rate))
    }

    /// The longest interval between a processing Book's polls while webhooks are silent: twice
    /// the minimum, or the maximum when that is shorter.
    public var silentCeiling: TimeInterval { min(maximum, 2 * minimum) }

    /// The interval between a processing Book's polls while webhooks are silent: `processing`
    /// Books polled, at a mean of 0.95 of the interval (`nextPoll` takes up to a tenth off), with
    /// `silentPollShare` of `rate` requests/s; never more often than the minimum nor less often
    /// than `silentCeiling`. Below the ceiling a finish waits at most one interval; at it (more
    /// Books than the share sustains at `silentCeiling`: about 456 at 5 requests/s and a 60 s
    /// minimum) the polls want more than the share and queue at the limiter.
    public func silentInterval(processing: Int, rate: Double) -> TimeInterval {
        guard rate > 0, rate.isFinite else { return silentCeiling }
        // At least the minimum over 0.9, so that the jitter never brings a poll under the minimum.
        return min(silentCeiling, max(minimum / 0.9, Double(max(processing, 0)) / (0.95 * Self.silentPollShare * rate)))
    }

    func activeCeiling(lastWebhookAt: Date?, now: Date, webhooksSilent: Bool) -> TimeInterval {
        if webhooksSilent { return silentCeiling }
        guard let lastWebhookAt, now.timeIntervalSince(lastWebhookAt) <= maximum else {
            return max(minimum, maximum / 4)
        }
        return maximum
    }
}

// MARK: what a transition's poll actions make of the pending poll

/// A Book's pending poll as the policy sees it (the store keeps it in `books`).
public struct PollSlot: Equatable, Sendable {
    /// When the poll is due (nil: none).
    public var next: Date?
    /// Why the poll is urgent (a `PollReason`'s raw value); nil for a scheduled poll.
    public var reason: String?
    /// A replica's status call for this Book is in flight.
    public var claimed: Bool

    /// A Book's pending poll as stored.
    public init(next: Date?, reason: String?, claimed: Bool) {
        self.next = next
        self.reason = reason
        self.claimed = claimed
    }
}

/// What the policy needs to know about the moment of a transition.
public struct PollContext: Sendable {
    /// When the transition happens.
    public var now: Date
    /// When the Book last had a webhook, if ever.
    public var lastWebhookAt: Date?
    /// When the Book's current generation finished, if it has.
    public var finishedAt: Date?
    /// True when webhooks are silent or lossy: polling takes over.
    public var webhooksSilent: Bool
    /// True while webhooks are measured reliable and trusted (`BOOKWATCH_WEBHOOK_TRUST`).
    public var webhooksTrusted: Bool
    /// The jitter, a draw from `0..<1`.
    public var unitRandom: Double
    /// While webhooks are silent, the interval the request budget allows (nil: not known).
    public var silentInterval: TimeInterval?
    /// The shortest interval between a finished Book's polls the budget allows (nil: not known).
    public var finishedInterval: TimeInterval?
    /// A deleted Book: when it was first seen gone (its gone doubt), for `afterGone`.
    public var goneSince: Date?

    /// The moment of one transition.
    public init(
        now: Date,
        lastWebhookAt: Date?,
        finishedAt: Date?,
        webhooksSilent: Bool,
        webhooksTrusted: Bool,
        unitRandom: Double,
        silentInterval: TimeInterval? = nil,
        finishedInterval: TimeInterval? = nil,
        goneSince: Date? = nil
    ) {
        self.now = now
        self.lastWebhookAt = lastWebhookAt
        self.finishedAt = finishedAt
        self.webhooksSilent = webhooksSilent
        self.webhooksTrusted = webhooksTrusted
        self.unitRandom = unitRandom
        self.silentInterval = silentInterval
        self.finishedInterval = finishedInterval
        self.goneSince = goneSince
    }
}

extension PollSchedule {
    /// The pending poll after a transition's `actions` (times in whole milliseconds, as stored):
    /// - `pollNow`: due now, urgent, and a poll in flight no longer holds it (it answers an older question);
    /// - `postponePoll`: only ever later, and never while a poll is urgent;
    /// - `pollWithin`: only ever earlier, never over an urgent or a claimed poll (that one writes the schedule);
    /// - `schedulePoll`: replaces the schedule unless an urgent poll was asked for in this transition
    ///   or since this snapshot's poll was claimed (`laterRequest`).
    public func apply(_ actions: [BookAction], to slot: PollSlot, laterRequest: Bool, context: PollContext) -> PollSlot {
        var slot = slot
        let urgentNow = actions.contains { if case .pollNow = $0 { true } else { false } }
        func scheduled(_ cadence: PollCadence) -> Date? {
            nextPoll(
                cadence: cadence,
                lastWebhookAt: context.lastWebhookAt,
                now: context.now,
                webhooksSilent: context.webhooksSilent,
                unitRandom: context.unitRandom,
                finishedAt: context.finishedAt,
                webhooksTrusted: context.webhooksTrusted,
                silentInterval: context.silentInterval,
                finishedInterval: context.finishedInterval,
                goneSince: context.goneSince
            )
            .map(Self.wholeMillisecond)
        }
        for action in actions {
            switch action {
            case .pollNow(let reason):
                slot.next = Self.wholeMillisecond(context.now)
                slot.reason = reason.rawValue
                slot.claimed = false
            case .postponePoll(let cadence):
                if slot.reason != nil || urgentNow { continue }
                let next = scheduled(cadence)
                if let next, let current = slot.next, next <= current { continue }
                slot.next = next
                slot.reason = nil
            case .pollWithin(let cadence):
                if slot.reason != nil || urgentNow || slot.claimed { continue }
                guard let next = scheduled(cadence) else { continue }
                if let current = slot.next, current <= next { continue }
                slot.next = next
            case .schedulePoll(let cadence):
                if urgentNow || laterRequest { continue }
                slot.next = scheduled(cadence)
                slot.reason = nil
            default:
                continue
            }
        }
        return slot
    }

    /// `date` rounded to the millisecond, the stores' resolution (so comparisons here agree with
    /// comparisons of stored values).
    public static func wholeMillisecond(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded() / 1000)
    }
}

// MARK: tightening, freshness, retries

/// A scheduled poll the tightening may move (`PollSchedule.tightened`).
public struct TighteningCandidate: Equatable, Sendable {
    /// When it is due now.
    public var next: Date
    /// The Book is finished (its poll watches for a reopen) rather than still processing.
    public var finished: Bool
    /// The last time anything was heard of the Book: a status answer, a webhook, or its tracking.
    public var lastHeard: Date

    /// A poll due at `next`, the Book last heard of at `lastHeard`.
    public init(next: Date, finished: Bool, lastHeard: Date) {
        self.next = next
        self.finished = finished
        self.lastHeard = lastHeard
    }
}

extension PollSchedule {
    /// How far ahead a poll may stay once webhooks stop being trusted: for a Book still
    /// processing, the silent interval when the budget is known (`silentInterval(processing:rate:)`),
    /// else `silentCeiling`; for a finished one (watched for a reopen), the maximum, or the
    /// finished Books' interval when the budget allows no less (`finishedInterval(finished:rate:)`).
    public func tighteningSpread(finished: Bool, silentInterval: TimeInterval? = nil, finishedInterval: TimeInterval? = nil) -> TimeInterval {
        finished ? max(maximum, finishedInterval ?? 0) : silentInterval ?? silentCeiling
    }

    /// The new times of polls pulled in together when webhooks stop being trusted, one per
    /// candidate in order (nil: it stays). A poll later than `now` plus its spread moves into
    /// `now ..< now + spread` (whole milliseconds): the moving polls of each kind (processing,
    /// finished) are spaced evenly over the spread, with jitter within each slot, the Book heard
    /// from longest ago first (the likeliest to have changed unseen), ties in the given order. So
    /// the polls come at the rate the spread was sized for, with no burst at its start or end.
    /// Urgent and claimed polls are never moved (the store does not offer them).
    public func tightened(
        _ candidates: [TighteningCandidate],
        now: Date,
        silentInterval: TimeInterval? = nil,
        finishedInterval: TimeInterval? = nil,
        unitRandom: () -> Double
    ) -> [Date?] {
        var moved = [Date?](repeating: nil, count: candidates.count)
        let nowMillis = (now.timeIntervalSince1970 * 1000).rounded()
        for finished in [false, true] {
            let spread = tighteningSpread(finished: finished, silentInterval: silentInterval, finishedInterval: finishedInterval)
            let span = max((spread * 1000).rounded(.down), 1)
            let movers = candidates.indices
                .filter { candidates[$0].finished == finished && (candidates[$0].next.timeIntervalSince1970 * 1000).rounded() > nowMillis + span }
                .sorted { (candidates[$0].lastHeard, $0) < (candidates[$1].lastHeard, $1) }
            for (rank, index) in movers.enumerated() {
                let u = min(max(unitRandom(), 0), 0.999_999_999)
                let offset = (span * (Double(rank) + u) / Double(movers.count)).rounded(.down)
                moved[index] = Date(timeIntervalSince1970: (nowMillis + offset) / 1000)
            }
        }
        return moved
    }

    /// How recent the last status answer must be for an analytics job to go ahead without a
    /// confirming poll first (when webhooks are not trusted), and the fallback wait for a
    /// resumed Book's job: twice the minimum.
    public var confirmFreshness: TimeInterval { 2 * minimum }

    /// The wait after a Book's `failures`-th failed poll in a row: doubling from `base`, capped
    /// at the maximum, jittered over its upper half; a `Retry-After` is a lower bound; at least 1 s.
    public func retryDelay(failures: Int, base: TimeInterval, retryAfter: TimeInterval?, unitRandom: Double) -> TimeInterval {
        let exponent = Double(min(max(failures - 1, 0), 30))
        let ceiling = max(1, min(max(maximum, base), base * pow(2, exponent)))
        return max(ceiling * (0.5 + 0.5 * min(max(unitRandom, 0), 1)), retryAfter ?? 0, 1)
    }
}
