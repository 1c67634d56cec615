import struct Foundation.Date
import struct Foundation.TimeInterval

/// How many changes webhooks fail to announce, estimated from what polls find: each document a
/// snapshot shows newly finished was either announced by a webhook first or not.
/// Recent observations weigh most (each older one decays by `decay`), so the estimate follows
/// an outage and its recovery. Webhooks start untrusted: until enough is known polling stays
/// tight, which is also what gathers the evidence quickly. Pure; the watcher feeds it and reads
/// `isLossy`.
///
/// Only event kinds the deployment receives count (`observe(_:announced:missed:at:)`): an
/// organisation that subscribes no document events would otherwise read as losing every one,
/// for ever. Document events are the measure wherever they arrive; where none has arrived within
/// `receivingWindow`, Book finishes are (was each finish a status answer showed announced by a
/// book-level event first?). Book finishes are not counted beside document events: a document's
/// event makes the watcher poll at once, often before the Book's own event arrives.
public struct WebhookLossEstimate: Sendable, Equatable, Codable {
    /// What an observation is about.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Documents found newly finished (`document.verification_succeeded`, `DOC_VERIFIED`,
        /// the thin body).
        case documents
        /// A generation found finished: `book.verified` (`BOOK_VERIFIED`), the one book-level
        /// event that comes at the finish itself (`book.completed` and analytics generated come
        /// later, and a late one of the previous generation must not announce the next).
        case bookFinishes

        /// The kind whose arrival `event` proves, if any.
        public init?(receiving event: WebhookEvent) {
            switch event {
            case .documentVerified, .documentStatus: self = .documents
            case .bookVerified: self = .bookFinishes
            default: return nil
            }
        }
    }

    /// When a webhook of each kind last arrived (the deployment's, across replicas).
    public private(set) var lastReceived: [Kind: Date] = [:]
    /// How long a kind counts as received after its last arrival.
    public static let receivingWindow: TimeInterval = 24 * 3600
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
    enum CodingKeys: String, CodingKey { case announced, missed, isLossy, judged, lastReceived }

    /// Reads an estimate shared through the store (its thresholds are this build's).
    public init(from decoder: any Decoder) throws {
        self.init()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        announced = try container.decode(Double.self, forKey: .announced)
        missed = try container.decode(Double.self, forKey: .missed)
        isLossy = try container.decode(Bool.self, forKey: .isLossy)
        judged = try container.decode(Bool.self, forKey: .judged)
        // Absent in estimates stored before kinds were tracked.
        let received = try container.decodeIfPresent([String: Date].self, forKey: .lastReceived) ?? [:]
        lastReceived = Dictionary(uniqueKeysWithValues: received.compactMap { key, date in Kind(rawValue: key).map { ($0, date) } })
    }

    /// Writes the evidence and the judgement (the thresholds are configuration, not state).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(announced, forKey: .announced)
        try container.encode(missed, forKey: .missed)
        try container.encode(isLossy, forKey: .isLossy)
        try container.encode(judged, forKey: .judged)
        try container.encode(Dictionary(uniqueKeysWithValues: lastReceived.map { ($0.key.rawValue, $0.value) }), forKey: .lastReceived)
    }

    /// A webhook of `kind` arrived at `date`.
    public mutating func noteReceived(_ kind: Kind, at date: Date) {
        if lastReceived[kind].map({ $0 < date }) ?? true { lastReceived[kind] = date }
    }

    /// Whether `kind` arrived within `receivingWindow` before `now`.
    public func receives(_ kind: Kind, at now: Date) -> Bool {
        lastReceived[kind].map { now.timeIntervalSince($0) <= Self.receivingWindow } ?? false
    }

    /// The kind that counts at `now`: documents where they arrive, else Book finishes where
    /// they arrive, else none (the estimate then keeps what it knew).
    public func measuredKind(at now: Date) -> Kind? {
        if receives(.documents, at: now) { return .documents }
        return receives(.bookFinishes, at: now) ? .bookFinishes : nil
    }

    /// Records an observation of `kind` when it is the kind that counts at `now`; returns true
    /// when `isLossy` changed.
    @discardableResult
    public mutating func observe(_ kind: Kind, announced: Int, missed: Int, at now: Date) -> Bool {
        guard measuredKind(at: now) == kind else { return false }
        return observe(announced: announced, missed: missed)
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
