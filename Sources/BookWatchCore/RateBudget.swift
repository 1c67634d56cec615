/// The deployment's one Ocrolus rate budget, shared by replicas on one database: Ocrolus limits
/// the organisation, not a process, so every replica draws each call from this one GCRA bucket
/// (kept in the database's `rate_budget` row) instead of a bucket of its own. A replica waiting
/// with more urgent work than another's (`RateDemand`) holds back that other replica's less urgent
/// calls, so priorities hold across replicas. Pure: the store reads the row and the live demands,
/// asks `decide` or `penalize`, and writes back what they answer. Times are microseconds since
/// 1970 (whole milliseconds would round a 3/s interval and drift past the limit).
public struct RateBudget: Sendable, Equatable {
    /// GCRA's theoretical arrival time: the bucket is empty until `tat - (burst - 1) × interval`.
    public var tat: Int64
    /// No grants before this (a 429's pause, shared by every replica).
    public var pausedUntil: Int64
    /// Half rate until this (after a 429).
    public var slowUntil: Int64

    /// A full bucket, nothing paused.
    public init(tat: Int64 = 0, pausedUntil: Int64 = 0, slowUntil: Int64 = 0) {
        self.tat = tat
        self.pausedUntil = pausedUntil
        self.slowUntil = slowUntil
    }

    /// How long a demand stands after its replica last asked, beyond the wait it was given: a
    /// dead replica's demand holds back the others at most this long after its last wake-up was due.
    public static let demandGrace: Int64 = 2_000_000

    /// One call's interval in microseconds at `rate` per second (doubled while slowed after a
    /// 429), rounded up so rounding never lets the rate drift above the limit.
    public func interval(rate: Double, now: Int64) -> Int64 {
        let perSecond = max(rate, 0.001)
        return Int64(((now < slowUntil ? 2 : 1) * 1_000_000 / perSecond).rounded(.up))
    }

    /// The calls that may leave at once: the burst less one kept in reserve. Calls reach Ocrolus
    /// from several hosts with their own network delays; with the whole burst spent, a call that
    /// travels faster than the one before it arrives early by Ocrolus's bucket and is refused
    /// (and a 429 halves the rate for a minute). One call in reserve absorbs an interval of that.
    public static func usableBurst(_ burst: Double) -> Double { min(burst >= 2 ? burst - 1 : max(burst, 1), 1_000_000) }

    /// Decides one request: granted (the bucket moves on by one interval) or how long to wait,
    /// and what the asking replica's demand becomes (nil: none stands).
    public mutating func decide(_ request: RateRequest, demands: [RateDemand]) -> (decision: RateDecision, demand: RateDemand?) {
        let now = request.now
        let interval = interval(rate: request.rate, now: now)
        let earliest = tat - Int64((Self.usableBurst(request.burst) - 1) * Double(interval))
        // How long this replica has waited at this rank: its standing demand's, else from now.
        let own = demands.first { $0.owner == request.owner && $0.expiresAt > now && $0.rank == request.rank }
        let since = own?.since ?? now
        func waiting(_ wait: Int64, _ reason: RateDecision.Reason) -> (RateDecision, RateDemand?) {
            let wait = max(wait, 1_000)
            let demand = RateDemand(owner: request.owner, rank: request.rank, since: since, expiresAt: now + wait + Self.demandGrace)
            return (.wait(microseconds: wait, reason), demand)
        }
        if now < pausedUntil { return waiting(pausedUntil - now, .paused) }
        // Another replica goes first with a more urgent call, or one as urgent waiting longer
        // (otherwise the replica nearest the database would win every slot at equal rank).
        let ahead = demands.contains {
            $0.owner != request.owner && $0.expiresAt > now && ($0.rank < request.rank || ($0.rank == request.rank && $0.since < since))
        }
        if ahead { return waiting(max(earliest - now, interval), .yielding) }
        if now < earliest { return waiting(earliest - now, .empty) }
        tat = max(tat, now) + interval
        let demand = request.behind.map { RateDemand(owner: request.owner, rank: $0, since: now, expiresAt: now + interval + Self.demandGrace) }
        return (.granted, demand)
    }

    /// After a 429 answered to any replica: no grants for `retryAfter` (at least one interval),
    /// half rate for `slowdown` seconds, and an empty bucket from the end of the pause (the
    /// server's is empty), as the in-process limiter does.
    public mutating func penalize(now: Int64, retryAfter: Double?, rate: Double, burst: Double, slowdown: Double) {
        let perSecond = max(rate, 0.001)
        let pause = now + Int64((max(retryAfter ?? 0, 1 / perSecond) * 1_000_000).rounded(.up))
        pausedUntil = max(pausedUntil, pause)
        slowUntil = max(slowUntil, now + Int64(slowdown * 1_000_000))
        let slowedInterval = Int64((2 * 1_000_000 / perSecond).rounded(.up))
        tat = max(tat, pause + Int64((Self.usableBurst(burst) - 1) * Double(slowedInterval)))
    }
}

/// One replica's call asking the shared budget for a slot.
public struct RateRequest: Sendable, Equatable {
    /// The replica (its lease owner name).
    public var owner: String
    /// The call's priority rank: lower goes first (`RequestPriority.rawValue`).
    public var rank: Int
    /// The rank of this replica's next waiter after this call, if one waits: its demand stands
    /// once this call is granted, so another replica's less urgent call does not slip in.
    public var behind: Int?
    /// The time of the request, microseconds since 1970: the replica's clock, replaced by the
    /// database's when `databaseClock` (so replicas' clocks never disagree on the bucket).
    public var now: Int64
    /// Decide on the database's clock instead of `now` (`serve` on PostgreSQL).
    public var databaseClock: Bool
    /// The organisation's requests per second (`BOOKWATCH_RATE_LIMIT`).
    public var rate: Double
    /// Requests allowed at once (`BOOKWATCH_RATE_BURST`).
    public var burst: Double

    /// A request for one slot.
    public init(owner: String, rank: Int, behind: Int?, now: Int64, rate: Double, burst: Double, databaseClock: Bool = false) {
        self.owner = owner
        self.rank = rank
        self.behind = behind
        self.now = now
        self.rate = rate
        self.burst = burst
        self.databaseClock = databaseClock
    }
}

/// A replica's standing claim to go first: it waits with a call of this rank.
public struct RateDemand: Sendable, Equatable {
    /// The replica.
    public var owner: String
    /// Its most urgent waiting call's rank (lower first).
    public var rank: Int
    /// Since when it has waited at this rank (among equal ranks, the longest wait goes first).
    public var since: Int64
    /// When the demand lapses unless renewed (microseconds since 1970).
    public var expiresAt: Int64

    /// A demand.
    public init(owner: String, rank: Int, since: Int64, expiresAt: Int64) {
        self.owner = owner
        self.rank = rank
        self.since = since
        self.expiresAt = expiresAt
    }
}

/// What the shared budget answers a request.
public enum RateDecision: Sendable, Equatable {
    /// Why a request waits.
    public enum Reason: String, Sendable {
        /// A 429's pause is in force.
        case paused
        /// Another replica waits with a more urgent call.
        case yielding
        /// The bucket is empty.
        case empty
    }

    /// Send the call now.
    case granted
    /// Ask again after this many microseconds.
    case wait(microseconds: Int64, Reason)
}
