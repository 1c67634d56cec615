import BookWatchCore
import Foundation
import Testing

@Suite struct PollScheduleTests {
    let schedule = PollSchedule(minimum: 60, maximum: 1800)
    let now = Fixture.t0

    func interval(_ cadence: PollCadence, lastWebhook: TimeInterval?, silent: Bool = false, u: Double) -> TimeInterval? {
        schedule.nextPoll(cadence: cadence, lastWebhookAt: lastWebhook.map { now.addingTimeInterval(-$0) }, now: now,
                          webhooksSilent: silent, unitRandom: u)?.timeIntervalSince(now)
    }

    @Test func neverMeansNoPoll() {
        #expect(interval(.never, lastWebhook: nil, u: 0.5) == nil)
    }

    @Test func activeBacksOffWhileWebhooksFlowAndTightensWhenQuiet() {
        #expect(interval(.active, lastWebhook: 10, u: 1) == 1800)
        #expect(interval(.active, lastWebhook: 10, u: 0) == 60)
        #expect(interval(.active, lastWebhook: 3600, u: 1) == 450)
        #expect(interval(.active, lastWebhook: nil, u: 1) == 450)
        #expect(interval(.active, lastWebhook: 10, silent: true, u: 1) == 120)
    }

    @Test func retentionStaysNearTheMaximum() {
        #expect(interval(.retention, lastWebhook: nil, u: 0) == 1800)
        #expect(interval(.retention, lastWebhook: nil, u: 1) == 1620)
    }

    @Test func maximumBelowMinimumIsRaised() {
        #expect(PollSchedule(minimum: 100, maximum: 10).maximum == 100)
    }
}
