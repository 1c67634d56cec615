@testable import BookWatchCLI
import Testing

/// The strategy bench's figures come from the simulator's own counters; a small run checks the
/// table's meaning (every Book complete once for the hybrid, nothing for webhook-only without webhooks).
@Suite struct StrategyBenchTests {
    @Test func hybridCompletesEveryBookOnceAndWebhookOnlyMissesLostOnes() async throws {
        let hybrid = try await StrategyBench.run(.hybrid, books: 12, loss: 0.3, seed: 5)
        #expect(hybrid.completed == 12 && hybrid.retrievals == 12 && hybrid.duplicates == 0)
        #expect(hybrid.statusCalls == hybrid.pollsByReason.values.reduce(0, +))
        #expect(hybrid.delayP50 != nil && hybrid.delayP99 != nil)
        let blind = try await StrategyBench.run(.webhookOnly, books: 12, loss: 1, seed: 5)
        #expect(blind.completed == 0 && blind.retrievals == 0 && blind.statusCalls == 0)
        let row = BenchStrategiesCommand.row(hybrid)
        #expect(row.contains("12/12") && row.contains("hybrid"))
    }
}
