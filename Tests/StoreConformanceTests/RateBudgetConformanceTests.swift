import BookWatchCore
import BookWatchStore
import Foundation
import Testing

/// The deployment's shared rate budget, in every store: the row is read, decided on and written
/// back in one transaction, so replicas asking at once never take more than the bucket holds.
@Suite struct RateBudgetConformanceTests {
    static let second: Int64 = 1_000_000
    static let t0: Int64 = Int64(F.t0.timeIntervalSince1970) * second

    func ask(_ store: any RateBudgetStore, _ owner: String, rank: Int = 2, behind: Int? = nil, at t: Int64) async throws -> RateDecision {
        try await store.takeRateSlot(RateRequest(owner: owner, rank: rank, behind: behind, now: t, rate: 5, burst: 5))
    }

    @Test(arguments: StoreKind.available)
    func theBudgetGrantsItsBurstThenWaitsAndAnUrgentDemandGoesFirst(_ kind: StoreKind) async throws {
        try await withStore(kind) { base in
            let store = try #require(base as? any RateBudgetStore)
            // A burst of 5 keeps one in reserve: 4 at once.
            for _ in 0..<4 { #expect(try await ask(store, "b", at: Self.t0) == .granted) }
            // Empty: the urgent caller of replica a waits, and its demand stands.
            #expect(try await ask(store, "a", rank: 1, at: Self.t0) == .wait(microseconds: 200_000, .empty))
            let standing = try await store.rateBudget(now: Self.t0)
            #expect(standing.demands == [RateDemand(owner: "a", rank: 1, since: Self.t0, expiresAt: Self.t0 + 200_000 + RateBudget.demandGrace)])
            #expect(standing.budget.tat == Self.t0 + 4 * 200_000)
            // When a slot opens, replica b's background call yields to it; a's takes it.
            let opened = Self.t0 + 200_000
            #expect(try await ask(store, "b", at: opened) == .wait(microseconds: 200_000, .yielding))
            #expect(try await ask(store, "a", rank: 1, at: opened) == .granted)
            // a's demand is gone with its last waiter: b's call goes at the next slot.
            #expect(try await store.rateBudget(now: opened).demands.map(\.owner) == ["b"])
            #expect(try await ask(store, "b", at: opened + 200_000) == .granted)
            #expect(try await store.rateBudget(now: opened + 200_000).demands.isEmpty)
        }
    }

    @Test(arguments: StoreKind.available)
    func a429PausesEveryReplicaAndADeadReplicasDemandLapses(_ kind: StoreKind) async throws {
        try await withStore(kind) { base in
            let store = try #require(base as? any RateBudgetStore)
            try await store.penalizeRate(now: Self.t0, databaseClock: false, retryAfter: 4, rate: 5, burst: 5, slowdown: 60)
            #expect(try await ask(store, "b", at: Self.t0 + Self.second) == .wait(microseconds: 3 * Self.second, .paused))
            // Replica a asks with an urgent call, then dies: its demand holds b back only until it lapses.
            let resume = Self.t0 + 4 * Self.second
            #expect(try await ask(store, "a", rank: 1, at: resume) == .granted)
            _ = try await ask(store, "a", rank: 1, at: resume)
            let lapse = try #require(try await store.rateBudget(now: resume).demands.first?.expiresAt)
            if case .wait(_, .yielding) = try await ask(store, "b", at: lapse - 1) {
            } else {
                Issue.record("b should yield to a's standing demand")
            }
            #expect(try await ask(store, "b", at: lapse) == .granted)
        }
    }

    /// `serve` decides on the database's clock: a replica whose own clock is hours off asks on
    /// the same timeline as the others.
    @Test(arguments: StoreKind.available)
    func onTheDatabasesClockAReplicasOwnClockDoesNotMatter(_ kind: StoreKind) async throws {
        try await withStore(kind) { base in
            let store = try #require(base as? any RateBudgetStore)
            let before = Date()
            let real = Int64(before.timeIntervalSince1970 * 1_000_000)
            try await store.penalizeRate(now: 0, databaseClock: true, retryAfter: 600, rate: 5, burst: 5, slowdown: 60)
            let skewed = RateRequest(owner: "a", rank: 1, behind: nil, now: real + 3_600 * Self.second, rate: 5, burst: 5, databaseClock: true)
            guard case .wait(let wait, .paused) = try await store.takeRateSlot(skewed) else {
                Issue.record("a replica an hour ahead should still see the pause")
                return
            }
            // The pause left, by the database's clock (however slow this machine is today).
            let elapsed = Int64(Date().timeIntervalSince(before) * 1_000_000)
            #expect(wait > 600 * Self.second - elapsed - Self.second && wait <= 600 * Self.second)
            let demand = try #require(try await store.rateBudget(now: real).demands.first)
            #expect(abs(demand.since - real) < 60 * Self.second)
        }
    }

    @Test(arguments: StoreKind.available)
    func replicasAskingAtOnceNeverTakeMoreThanTheBucketHolds(_ kind: StoreKind) async throws {
        let opened = try await openStore(kind, schedule: PollSchedule(minimum: 60, maximum: 1800), random: { 0 })
        var replicas: [any RateBudgetStore] = [try #require(opened.store as? any RateBudgetStore)]
        var extra: [any BookStore] = []
        for _ in 0..<2 {
            let store = try await opened.reopen()
            extra.append(store)
            replicas.append(try #require(store as? any RateBudgetStore))
        }
        let granted = try await withThrowingTaskGroup(of: Int.self) { group in
            for (index, store) in replicas.enumerated() {
                group.addTask {
                    var granted = 0
                    for _ in 0..<12 {
                        if try await ask(store, "r\(index)", at: Self.t0) == .granted { granted += 1 }
                    }
                    return granted
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(granted == 4)
        for store in extra { try await store.close() }
        try await opened.close()
    }
}
