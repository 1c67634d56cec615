import Testing

@testable import BookWatchBench
@testable import BookWatchCLI

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
        #expect(hybrid.sinceLoss == nil)
    }

    @Test func lossStartingPartWayReportsTheBooksFinishedAfterIt() async throws {
        let result = try await StrategyBench.run(.hybrid, books: 12, loss: 1, seed: 5, lossFrom: 2400)
        #expect(result.completed == 12 && result.duplicates == 0)
        let since = try #require(result.sinceLoss)
        #expect(since.books > 0 && since.books < 12, "some Books finish before the loss, some after")
        #expect(since.p99 != nil)
    }

    /// With working webhooks, once they have proved reliable, `book.verified` bodies finish Books
    /// without a status call; never trusting them, every finish costs one.
    @Test func trustedWebhooksSpareTheConfirmationCalls() async throws {
        let trusted = try await StrategyBench.run(.hybrid, books: 60, loss: 0, seed: 5)
        let strict = try await StrategyBench.run(.hybridStrict, books: 60, loss: 0, seed: 5)
        for result in [trusted, strict] {
            #expect(result.completed == 60 && result.retrievals == 60 && result.duplicates == 0, "\(result.strategy)")
        }
        // Strict: every Book's finish is confirmed (one webhook_hint poll each, at least).
        #expect(strict.pollsByReason["webhook_hint", default: 0] >= 60)
        // Trusted: only the Books that finish before the estimate has enough evidence are confirmed.
        #expect(trusted.pollsByReason["webhook_hint", default: 0] < 30)
        #expect(trusted.statusCalls < strict.statusCalls)
    }
}
