import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import Synchronization

/// The rate limiter's shared budget kept in the database replicas share (`RateBudgetStore`):
/// each call's slot is one short transaction on the budget row. A failure is logged at most once
/// a minute (the limiter asks again every second meanwhile, and no call leaves without a slot).
public final class StoreRateBudget: SharedRateBudget {
    private let store: any RateBudgetStore
    private let owner: String
    private let logger: Logger
    private let databaseClock: Bool
    private let lastWarning = Mutex<Date?>(nil)

    /// A budget in `store`, asked for as `owner` (the replica's lease owner name). With
    /// `databaseClock` (serve), the bucket runs on the database's clock, so replicas whose clocks
    /// disagree still share one timeline; without, on the caller's (tests on a virtual clock).
    public init(store: any RateBudgetStore, owner: String, logger: Logger, databaseClock: Bool = true) {
        self.store = store
        self.owner = owner
        self.logger = logger
        self.databaseClock = databaseClock
    }

    /// `SharedRateBudget.take`: one transaction on the budget row.
    public func take(_ priority: RequestPriority, behind: RequestPriority?, at now: Date, rate: Double, burst: Double) async throws -> TimeInterval? {
        let request = RateRequest(
            owner: owner,
            rank: priority.rawValue,
            behind: behind?.rawValue,
            now: now.microseconds,
            rate: rate,
            burst: burst,
            databaseClock: databaseClock
        )
        do {
            switch try await store.takeRateSlot(request) {
            case .granted: return nil
            case .wait(let microseconds, _): return Double(microseconds) / 1_000_000
            }
        } catch {
            warn(error, at: now, doing: "take a call's slot")
            throw error
        }
    }

    /// `SharedRateBudget.penalize`: the pause written for every replica.
    public func penalize(at now: Date, retryAfter: TimeInterval?, rate: Double, burst: Double, slowdown: TimeInterval) async throws {
        do {
            try await store.penalizeRate(
                now: now.microseconds,
                databaseClock: databaseClock,
                retryAfter: retryAfter,
                rate: rate,
                burst: burst,
                slowdown: slowdown
            )
        } catch {
            warn(error, at: now, doing: "share a 429's pause")
            throw error
        }
    }

    private func warn(_ error: any Error, at now: Date, doing what: String) {
        let due = lastWarning.withLock { last -> Bool in
            guard last.map({ now.timeIntervalSince($0) >= 60 || now < $0 }) ?? true else { return false }
            last = now
            return true
        }
        guard due else { return }
        logger.warning(
            "the shared rate budget could not \(what); Ocrolus calls wait for it (asked again every second)",
            metadata: ["error": "\(error)"]
        )
    }
}

extension Date {
    /// Microseconds since 1970 (the shared rate budget's times).
    var microseconds: Int64 { Int64((timeIntervalSince1970 * 1_000_000).rounded()) }
}
