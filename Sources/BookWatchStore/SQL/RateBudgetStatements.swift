import BookWatchCore
import Foundation

/// The deployment's shared Ocrolus rate budget (`RateBudget`), kept in the database replicas
/// share: one row (`rate_budget`) and each waiting replica's demand (`rate_demand`). `serve` on
/// PostgreSQL draws every call from it; a single SQLite node keeps its in-process limiter (the
/// store implements it too, so the conformance suite holds both to the same answers).
public protocol RateBudgetStore: Sendable {
    /// Takes one call's slot, or says how long to wait: the row is locked, decided on with the
    /// live demands, and written back with the asking replica's demand in one transaction.
    func takeRateSlot(_ request: RateRequest) async throws -> RateDecision

    /// Shares a 429's pause with every replica (`RateBudget.penalize`), from `now` or, with
    /// `databaseClock`, from the database's clock.
    func penalizeRate(now: Int64, databaseClock: Bool, retryAfter: Double?, rate: Double, burst: Double, slowdown: Double) async throws

    /// The budget row and the demands standing at `now` (inspection and tests).
    func rateBudget(now: Int64) async throws -> (budget: RateBudget, demands: [RateDemand])
}

/// `RateBudgetStore` for both stores.
extension SQLStatementStore {
    /// `RateBudgetStore.takeRateSlot` for both stores.
    public func takeRateSlot(_ request: RateRequest) async throws -> RateDecision {
        try await perform(
            StoreOperation(
                .transaction,
                RateBudgetStatements.locked(now: request.now, databaseClock: request.databaseClock) { budget, now in
                    .run(RateBudgetStatements.demands(at: now)) { rows in
                        let demands = try rows.map(RateDemand.init(row:))
                        var next = budget
                        var request = request
                        request.now = now
                        let (decision, demand) = next.decide(request, demands: demands)
                        var writes = [RateBudgetStatements.forgetDemands(before: now)]
                        if next != budget { writes.append(RateBudgetStatements.write(next)) }
                        let own = demands.first { $0.owner == request.owner }
                        if demand != own {
                            writes.append(demand.map(RateBudgetStatements.write) ?? RateBudgetStatements.forgetDemand(of: request.owner))
                        }
                        return StoreOperation.chain(writes, then: .done(decision))
                    }
                }
            )
        )
    }

    /// `RateBudgetStore.penalizeRate` for both stores.
    public func penalizeRate(now: Int64, databaseClock: Bool, retryAfter: Double?, rate: Double, burst: Double, slowdown: Double) async throws {
        try await perform(
            StoreOperation(
                .transaction,
                RateBudgetStatements.locked(now: now, databaseClock: databaseClock) { budget, now in
                    var next = budget
                    next.penalize(now: now, retryAfter: retryAfter, rate: rate, burst: burst, slowdown: slowdown)
                    return .run(RateBudgetStatements.write(next)) { _ in .done(()) }
                }
            )
        )
    }

    /// `RateBudgetStore.rateBudget` for both stores.
    public func rateBudget(now: Int64) async throws -> (budget: RateBudget, demands: [RateDemand]) {
        try await perform(
            StoreOperation(
                .read,
                .run(SQLStep("SELECT tat, paused_until, slow_until FROM rate_budget WHERE id = 1", reads: true)) { rows in
                    let budget = try rows.first.map(RateBudget.init(row:)) ?? RateBudget()
                    return .run(RateBudgetStatements.demands(at: now)) { rows in .done((budget, try rows.map(RateDemand.init(row:)))) }
                }
            )
        )
    }
}

/// The statements of the shared rate budget.
enum RateBudgetStatements {
    /// Bounds the transaction's lock waits, creates the row when missing (so concurrent replicas
    /// serialise on its lock), reads it locked, reads the time (the database's, after the lock,
    /// when `databaseClock`; else `now`), and goes on with `then`.
    static func locked<Answer: Sendable>(
        now: Int64,
        databaseClock: Bool,
        _ then: @escaping @Sendable (RateBudget, Int64) throws -> StoreOperation<Answer>.Next
    ) -> StoreOperation<Answer>.Next {
        let bound = SQLStep("SELECT \(.boundedLockWaits)", reads: true)
        let create = SQLStep("INSERT INTO rate_budget (id, tat, paused_until, slow_until) VALUES (1, 0, 0, 0) ON CONFLICT (id) DO NOTHING")
        let read = SQLStep("SELECT tat, paused_until, slow_until, \(.nowMicroseconds) AS now FROM rate_budget WHERE id = 1\(.rowLock)", reads: true)
        return .run(bound) { _ in
            .run(create) { _ in
                .run(read) { rows in
                    guard let row = rows.first else { return try then(RateBudget(), now) }
                    return try then(try RateBudget(row: row), databaseClock ? try row.int64("now") : now)
                }
            }
        }
    }

    static func write(_ budget: RateBudget) -> SQLStep {
        SQLStep("UPDATE rate_budget SET tat = \(budget.tat), paused_until = \(budget.pausedUntil), slow_until = \(budget.slowUntil) WHERE id = 1")
    }

    static func demands(at now: Int64) -> SQLStep {
        SQLStep("SELECT owner, priority_rank, since, expires_at FROM rate_demand WHERE expires_at > \(now) ORDER BY owner", reads: true)
    }

    static func write(_ demand: RateDemand) -> SQLStep {
        SQLStep(
            """
            INSERT INTO rate_demand (owner, priority_rank, since, expires_at)
            VALUES (\(demand.owner), \(Int64(demand.rank)), \(demand.since), \(demand.expiresAt))
            ON CONFLICT (owner) DO UPDATE SET priority_rank = excluded.priority_rank, since = excluded.since, expires_at = excluded.expires_at
            """
        )
    }

    static func forgetDemand(of owner: String) -> SQLStep { SQLStep("DELETE FROM rate_demand WHERE owner = \(owner)") }

    /// Lapsed demands (a replica that died or stopped waiting without saying so).
    static func forgetDemands(before now: Int64) -> SQLStep { SQLStep("DELETE FROM rate_demand WHERE expires_at <= \(now)") }
}

extension RateBudget {
    /// A `rate_budget` row.
    init(row: any SQLRow) throws {
        self.init(tat: try row.int64("tat"), pausedUntil: try row.int64("paused_until"), slowUntil: try row.int64("slow_until"))
    }
}

extension RateDemand {
    /// A `rate_demand` row.
    init(row: any SQLRow) throws {
        self.init(
            owner: try row.string("owner"),
            rank: try row.int("priority_rank"),
            since: try row.int64("since"),
            expiresAt: try row.int64("expires_at")
        )
    }
}
