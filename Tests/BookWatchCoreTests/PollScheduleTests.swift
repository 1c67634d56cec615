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
        #expect(interval(.active, lastWebhook: 10, u: 0) == 900)  // webhooks flowing: a safety net only
        #expect(interval(.active, lastWebhook: 3600, u: 1) == 450)
        #expect(interval(.active, lastWebhook: nil, u: 1) == 450)
        #expect(interval(.active, lastWebhook: 10, silent: true, u: 1) == 120)
    }

    @Test func retentionStaysNearTheMaximum() {
        #expect(interval(.retention, lastWebhook: nil, u: 0) == 1800)
        #expect(interval(.retention, lastWebhook: nil, u: 1) == 1620)
    }

    @Test func retentionEndsOnceTheBookHasBeenFinishedLongEnough() {
        let week = PollSchedule(minimum: 60, maximum: 1800, retention: 7 * 86400)
        func next(finishedAgo: TimeInterval?) -> Date? {
            week.nextPoll(cadence: .retention, lastWebhookAt: nil, now: now, webhooksSilent: false, unitRandom: 0,
                          finishedAt: finishedAgo.map { now.addingTimeInterval(-$0) })
        }
        #expect(next(finishedAgo: 3600) == now.addingTimeInterval(1800))
        #expect(next(finishedAgo: 7 * 86400 - 1800) == now.addingTimeInterval(1800))  // exactly at the limit: one more
        #expect(next(finishedAgo: 7 * 86400 - 1799) == nil)
        #expect(next(finishedAgo: nil) != nil)
        let forever = PollSchedule(minimum: 60, maximum: 1800, retention: nil)
        #expect(forever.nextPoll(cadence: .retention, lastWebhookAt: nil, now: now, webhooksSilent: false, unitRandom: 0,
                                 finishedAt: now.addingTimeInterval(-1e9)) != nil)
        // Active Books are never cut off, however long ago an earlier generation finished.
        #expect(week.nextPoll(cadence: .active, lastWebhookAt: nil, now: now, webhooksSilent: false, unitRandom: 0,
                              finishedAt: now.addingTimeInterval(-1e9)) != nil)
    }

    @Test func soonIsWithinOneToTwoMinima() {
        #expect(interval(.soon, lastWebhook: 10, u: 0) == 60)
        #expect(interval(.soon, lastWebhook: nil, u: 1) == 120)
    }

    @Test func trustedRetentionWaitsAsLongAsTheBookHasBeenFinished() {
        let week = PollSchedule(minimum: 60, maximum: 1800, retention: 7 * 86400)
        // Follow one finished Book: each poll is set when the previous one happens (no jitter).
        var polls: [TimeInterval] = []
        var at = now
        while let next = week.nextPoll(cadence: .retention, lastWebhookAt: nil, now: at, webhooksSilent: false, unitRandom: 0,
                                       finishedAt: now, webhooksTrusted: true) {
            polls.append(next.timeIntervalSince(now) / 1800)
            at = next
        }
        #expect(polls == [1, 2, 4, 8, 16, 32, 64, 128, 256], "in maxima after the finish: 9 polls in a week instead of 336")
        // Untrusted, the same Book is polled every maximum.
        let untrusted = week.nextPoll(cadence: .retention, lastWebhookAt: nil, now: now.addingTimeInterval(86400), webhooksSilent: true,
                                      unitRandom: 0, finishedAt: now, webhooksTrusted: false)
        #expect(untrusted == now.addingTimeInterval(86400 + 1800))
    }

    @Test func maximumBelowMinimumIsRaised() {
        #expect(PollSchedule(minimum: 100, maximum: 10).maximum == 100)
    }
}
