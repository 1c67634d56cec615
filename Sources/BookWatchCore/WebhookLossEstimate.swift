/// How many document changes webhooks fail to announce, estimated from what polls find: each
/// document a snapshot shows newly finished was either announced by a webhook first or not.
/// Recent observations weigh most (each older one decays by `decay`), so the estimate follows
/// an outage and its recovery. Webhooks start untrusted: until enough is known polling stays
/// tight, which is also what gathers the evidence quickly. Pure; the watcher feeds it and reads
/// `isLossy`.
public struct WebhookLossEstimate: Sendable, Equatable, Codable {
    /// Document changes a webhook announced, decayed (recent evidence weighs more).
    public private(set) var announced: Double = 0
    /// Document changes a poll found that no webhook announced, decayed the same way.
    public private(set) var missed: Double = 0
    /// True until enough is known, then once the estimate passes `enter`, until it falls below
    /// `leave` (hysteresis).
    public private(set) var isLossy = true
    /// False until the first estimate: then the verdict is simply above `enter` or not.
    private var judged = false
    let decay: Double
    let enter: Double
    let leave: Double
    /// Observations needed before the estimate means anything.
    let minimumWeight: Double

    /// An estimate with no evidence yet: `decay` per observation, lossy above `enter`, reliable again below `leave`, judged only after `minimumWeight` observations.
    public init(decay: Double = 0.98, enter: Double = 0.10, leave: Double = 0.05, minimumWeight: Double = 8) {
        self.decay = decay
        self.enter = enter
        self.leave = leave
        self.minimumWeight = minimumWeight
    }

    /// Only the measured state is stored; the tuning (decay, thresholds) is this build's.
    enum CodingKeys: String, CodingKey { case announced, missed, isLossy, judged }

    /// Reads an estimate shared through the store (its thresholds are this build's).
    public init(from decoder: any Decoder) throws {
        self.init()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        announced = try container.decode(Double.self, forKey: .announced)
        missed = try container.decode(Double.self, forKey: .missed)
        isLossy = try container.decode(Bool.self, forKey: .isLossy)
        judged = try container.decode(Bool.self, forKey: .judged)
    }

    /// Writes the evidence and the judgement (the thresholds are configuration, not state).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(announced, forKey: .announced)
        try container.encode(missed, forKey: .missed)
        try container.encode(isLossy, forKey: .isLossy)
        try container.encode(judged, forKey: .judged)
    }

    /// The fraction of document changes no webhook announced, or nil while too little is known.
    public var lossRatio: Double? {
        announced + missed >= minimumWeight ? missed / (announced + missed) : nil
    }

    /// Records one snapshot's documents; returns true when `isLossy` changed.
    @discardableResult
    public mutating func observe(announced newlyAnnounced: Int, missed newlyMissed: Int) -> Bool {
        for _ in 0..<newlyAnnounced {
            announced = announced * decay + 1
            missed *= decay
        }
        for _ in 0..<newlyMissed {
            missed = missed * decay + 1
            announced *= decay
        }
        let before = isLossy
        if let ratio = lossRatio {
            if !judged {
                judged = true
                isLossy = ratio > enter
            } else if !isLossy && ratio > enter {
                isLossy = true
            } else if isLossy && ratio < leave {
                isLossy = false
            }
        }
        return before != isLossy
    }
}
