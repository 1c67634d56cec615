import Foundation

/// How fast webhooks arrive per Book still processing, and whether the silence since the last
/// one says they stopped (an outage) rather than that nothing happened.
///
/// Silence alone proves nothing (a quiet hour with nothing processing is normal), so the 1-hour
/// rule (`WatcherConfiguration.webhookSilence`) waits long. But while Books are processing, the
/// deployment's own recent history says how many deliveries to expect: arrivals per
/// processing-Book-second over the last `window`, times the Books processing now. When none came
/// for `quietFactor` expected gaps (and at least `floor`, the poll minimum), the outage is
/// suspected, and stays so until a webhook arrives. Fewer Books processing stretch the expected
/// gap, so the end of a batch (a few slow Books left) does not look like an outage.
///
/// Fed every `sampleEvery` seconds with the inbox's newest id (every delivery stored, any
/// replica's) and the count of Books processing. Pure: the watcher samples, asks, and acts.
public struct WebhookArrivals: Sendable, Equatable {
    /// One reading: when, the inbox's newest id, and how many Books were processing.
    public struct Sample: Sendable, Equatable {
        /// When it was read.
        public var at: Date
        /// The inbox's newest id then (counts deliveries stored).
        public var inboxID: Int64
        /// Books tracking or processing then.
        public var processing: Int
        /// Finished Books with a retention poll then (they size `PollSchedule.finishedInterval`).
        public var finished: Int

        /// A reading.
        public init(at: Date, inboxID: Int64, processing: Int, finished: Int = 0) {
            self.at = at
            self.inboxID = inboxID
            self.processing = processing
            self.finished = finished
        }
    }

    /// The history the rate is measured over.
    public static let window: TimeInterval = 1_800
    /// Seconds between readings.
    public static let sampleEvery: TimeInterval = 10
    /// Fewer deliveries than this in the window measure nothing.
    public static let minimumArrivals: Int64 = 20
    /// Less history than this (after a start) measures nothing: a restart's burst of
    /// redeliveries is not a rate.
    public static let minimumHistory: TimeInterval = 600
    /// A silence must also be this many times the longest quiet spell seen in the window while
    /// Books were processing (deliveries come in clumps: a batch uploads, then goes quiet).
    public static let quietSpellFactor: Double = 1.5
    /// Expected gaps without a delivery that make an outage: under a Poisson flow, e^-10 of
    /// quiet spells would be this long by chance.
    public static let quietFactor: Double = 10

    /// Readings, oldest first, within `window`.
    public private(set) var samples: [Sample] = []
    /// When the outage was first suspected (nil: not suspected).
    public private(set) var suspectedSince: Date?

    /// No readings yet.
    public init() {}

    /// True when a reading is due at `now`.
    public func wantsSample(at now: Date) -> Bool {
        guard let last = samples.last else { return true }
        return now.timeIntervalSince(last.at) >= Self.sampleEvery || now < last.at
    }

    /// Adds a reading and forgets those older than the window.
    public mutating func record(_ sample: Sample) {
        if let last = samples.last, sample.at < last.at {  // the clock stepped back
            samples.removeAll()
            suspectedSince = nil
        }
        samples.append(sample)
        samples.removeAll { sample.at.timeIntervalSince($0.at) > Self.window }
    }

    /// Deliveries per processing-Book-second, measured up to `lastWebhook` (the silence since is
    /// what is being judged, so it is not counted); nil when too few arrived to say.
    public func ratePerProcessingBook(until lastWebhook: Date) -> Double? {
        let history = samples.filter { $0.at <= lastWebhook }
        guard let first = history.first, let last = history.last, last.at.timeIntervalSince(first.at) >= Self.minimumHistory else { return nil }
        // Only intervals with Books processing count, deliveries and exposure alike (a finished
        // Book's or an untracked one's events while none processed measure nothing); an id that
        // went back (a pruned, emptied inbox) counts as none.
        var arrivals: Int64 = 0
        var exposure = 0.0  // processing-Book-seconds
        for (earlier, later) in zip(history, history.dropFirst()) where earlier.processing > 0 {
            arrivals += max(0, later.inboxID - earlier.inboxID)
            exposure += Double(earlier.processing) * later.at.timeIntervalSince(earlier.at)
        }
        guard arrivals >= Self.minimumArrivals, exposure > 0 else { return nil }
        return Double(arrivals) / exposure
    }

    /// When the inbox's id last rose between two readings: a delivery some replica stored, seen
    /// even before the shared last-webhook time is written or re-read.
    public var lastRise: Date? {
        samples.indices.dropFirst().last { samples[$0].inboxID > samples[$0 - 1].inboxID }.map { samples[$0].at }
    }

    /// The longest spell without a delivery, in the window up to `lastWebhook`, while Books were
    /// processing (between readings, so to the nearest `sampleEvery`).
    public func longestQuietSpell(until lastWebhook: Date) -> TimeInterval {
        var longest = 0.0
        var spellStart: Date?
        for (earlier, later) in zip(samples, samples.dropFirst()) where later.at <= lastWebhook {
            if later.inboxID <= earlier.inboxID && earlier.processing > 0 {
                spellStart = spellStart ?? earlier.at
                longest = max(longest, later.at.timeIntervalSince(spellStart ?? earlier.at))
            } else {
                spellStart = nil
            }
        }
        return longest
    }

    /// The expected gap between deliveries with `processing` Books processing; nil when unknown.
    public func expectedGap(processing: Int, until lastWebhook: Date) -> TimeInterval? {
        guard processing > 0, let rate = ratePerProcessingBook(until: lastWebhook), rate > 0 else { return nil }
        return 1 / (rate * Double(processing))
    }

    /// Whether webhooks look stopped at `now`: no delivery since `lastWebhook` for `quietFactor`
    /// expected gaps (at least `floor`) while Books are processing. Once suspected, it holds
    /// until a delivery newer than the suspicion arrives.
    public mutating func suspectsOutage(now: Date, lastWebhook: Date, floor: TimeInterval) -> Bool {
        if let since = suspectedSince {
            if lastWebhook <= since { return true }
            suspectedSince = nil
        }
        let processing = samples.last?.processing ?? 0
        guard let gap = expectedGap(processing: processing, until: lastWebhook) else { return false }
        let threshold = max(floor, Self.quietFactor * gap, Self.quietSpellFactor * longestQuietSpell(until: lastWebhook))
        guard now.timeIntervalSince(lastWebhook) > threshold else { return false }
        suspectedSince = now
        return true
    }
}
