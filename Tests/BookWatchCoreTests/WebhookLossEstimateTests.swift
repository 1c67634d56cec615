import BookWatchCore
import Foundation
import Testing

@Suite struct WebhookLossEstimateTests {
    @Test func webhooksAreUntrustedUntilEnoughIsKnown() {
        var estimate = WebhookLossEstimate()
        #expect(estimate.isLossy)
        estimate.observe(announced: 4, missed: 0)
        #expect(estimate.lossRatio == nil && estimate.isLossy)
        estimate.observe(announced: 6, missed: 0)  // enough is known, nothing missed: trusted at once
        #expect(estimate.lossRatio == 0 && !estimate.isLossy)
    }

    @Test func reliableWebhooksAreNotLossy() {
        var estimate = WebhookLossEstimate()
        for _ in 0..<100 { estimate.observe(announced: 3, missed: 0) }
        #expect(estimate.lossRatio == 0 && !estimate.isLossy)
    }

    @Test func thirtyPercentLossIsNoticedAndRecoveryToo() {
        var estimate = WebhookLossEstimate()
        var changes = 0
        for round in 0..<100 {
            if estimate.observe(announced: round % 10 < 7 ? 1 : 0, missed: round % 10 < 7 ? 0 : 1) { changes += 1 }
        }
        #expect(estimate.isLossy)
        #expect(abs((estimate.lossRatio ?? 0) - 0.3) < 0.1)
        for _ in 0..<200 { estimate.observe(announced: 1, missed: 0) }
        #expect(!estimate.isLossy)
        #expect(changes == 0)  // untrusted from the start, then judged lossy: no change to report
    }

    @Test func hysteresisKeepsTheStateBetweenTheThresholds() {
        var estimate = WebhookLossEstimate(decay: 1, enter: 0.10, leave: 0.05, minimumWeight: 10)
        estimate.observe(announced: 10, missed: 0)  // trusted
        #expect(!estimate.isLossy)
        estimate.observe(announced: 78, missed: 12)  // 12%: lossy
        #expect(estimate.isLossy)
        estimate.observe(announced: 40, missed: 0)  // 8.6%: between the thresholds, still lossy
        #expect(estimate.isLossy)
        estimate.observe(announced: 120, missed: 0)  // 4.6%: below leave
        #expect(!estimate.isLossy)
    }
}

@Suite struct WebhookCoverageTests {
    typealias F = Fixture

    @Test func snapshotsCountDocumentsAnnouncedByAWebhookAndThoseNot() {
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verifying(finished: [], unfinished: [1, 2, 3]), at: F.t0)
        _ = machine.apply(F.hint(.documentVerified, doc: 1), at: F.t0.addingTimeInterval(1))
        let actions = machine.apply(F.verifying(finished: [1, 2], unfinished: [3]), at: F.t0.addingTimeInterval(2))
        #expect(actions.contains(.webhookCoverage(announced: 1, missed: 1)))
        // Already seen finished: not counted again.
        let again = machine.apply(F.verifying(finished: [1, 2], unfinished: [3]), at: F.t0.addingTimeInterval(3))
        #expect(!again.contains { if case .webhookCoverage = $0 { true } else { false } })
    }

    @Test func aBooksFirstSnapshotSaysNothingAboutWebhooks() {
        var machine = BookMachine(uuid: F.uuid)
        let actions = machine.apply(F.verifying(finished: [1, 2], unfinished: [3]), at: F.t0)
        #expect(!actions.contains { if case .webhookCoverage = $0 { true } else { false } })
    }
}
