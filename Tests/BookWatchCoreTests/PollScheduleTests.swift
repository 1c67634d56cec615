import BookWatchCore
import Foundation
import Testing

@Suite struct PollScheduleTests {
    let schedule = PollSchedule(minimum: 60, maximum: 1800)
    let now = Fixture.t0

    func interval(_ cadence: PollCadence, lastWebhook: TimeInterval?, silent: Bool = false, u: Double) -> TimeInterval? {
        schedule.nextPoll(
            cadence: cadence,
            lastWebhookAt: lastWebhook.map { now.addingTimeInterval(-$0) },
            now: now,
            webhooksSilent: silent,
            unitRandom: u
        )?.timeIntervalSince(now)
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
            week.nextPoll(
                cadence: .retention,
                lastWebhookAt: nil,
                now: now,
                webhooksSilent: false,
                unitRandom: 0,
                finishedAt: finishedAgo.map { now.addingTimeInterval(-$0) }
            )
        }
        #expect(next(finishedAgo: 3600) == now.addingTimeInterval(1800))
        #expect(next(finishedAgo: 7 * 86400 - 1800) == now.addingTimeInterval(1800))  // exactly at the limit: one more
        #expect(next(finishedAgo: 7 * 86400 - 1799) == nil)
        #expect(next(finishedAgo: nil) != nil)
        let forever = PollSchedule(minimum: 60, maximum: 1800, retention: nil)
        #expect(
            forever.nextPoll(
                cadence: .retention,
                lastWebhookAt: nil,
                now: now,
                webhooksSilent: false,
                unitRandom: 0,
                finishedAt: now.addingTimeInterval(-1e9)
            ) != nil
        )
        // Active Books are never cut off, however long ago an earlier generation finished.
        #expect(
            week.nextPoll(
                cadence: .active,
                lastWebhookAt: nil,
                now: now,
                webhooksSilent: false,
                unitRandom: 0,
                finishedAt: now.addingTimeInterval(-1e9)
            ) != nil
        )
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
        while let next = week.nextPoll(
            cadence: .retention,
            lastWebhookAt: nil,
            now: at,
            webhooksSilent: false,
            unitRandom: 0,
            finishedAt: now,
            webhooksTrusted: true
        ) {
            polls.append(next.timeIntervalSince(now) / 1800)
            at = next
        }
        #expect(polls == [1, 2, 4, 8, 16, 32, 64, 128, 256], "in maxima after the finish: 9 polls in a week instead of 336")
        // Untrusted, the same Book is polled every maximum.
        let untrusted = week.nextPoll(
            cadence: .retention,
            lastWebhookAt: nil,
            now: now.addingTimeInterval(86400),
            webhooksSilent: true,
            unitRandom: 0,
            finishedAt: now,
            webhooksTrusted: false
        )
        #expect(untrusted == now.addingTimeInterval(86400 + 1800))
    }

    @Test func maximumBelowMinimumIsRaised() {
        #expect(PollSchedule(minimum: 100, maximum: 10).maximum == 100)
    }

    // MARK: the pending poll after a transition's actions

    func slot(_ next: TimeInterval?, urgent: Bool = false, claimed: Bool = false) -> PollSlot {
        PollSlot(next: next.map { now.addingTimeInterval($0) }, reason: urgent ? PollReason.webhookHint.rawValue : nil, claimed: claimed)
    }

    @Test(
        arguments: [
            // (actions, before, laterRequest, after): u = 0, webhooks flowing (last one 10 s ago)
            ([BookAction.pollNow(.webhookHint)], (3000.0, false, true), false, (0.0, true, false)),
            ([.schedulePoll(.soon)], (3000, false, false), false, (60, false, false)),
            ([.schedulePoll(.soon)], (3000, true, false), false, (60, false, false)),  // a poll's answer replaces an urgent poll
            ([.schedulePoll(.soon)], (0, true, false), true, (0, true, false)),  // unless asked for since this poll was claimed
            ([.pollNow(.webhookHint), .schedulePoll(.soon)], (3000, false, false), false, (0, true, false)),  // urgent now stays first
            ([.postponePoll(.active)], (100, false, false), false, (900, false, false)),  // only later
            ([.postponePoll(.active)], (5000, false, false), false, (5000, false, false)),  // never earlier
            ([.postponePoll(.active)], (100, true, false), false, (100, true, false)),  // never over an urgent poll
            ([.pollWithin(.soon)], (3000, false, false), false, (60, false, false)),  // only earlier
            ([.pollWithin(.soon)], (30, false, false), false, (30, false, false)),  // never later
            ([.pollWithin(.soon)], (3000, false, true), false, (3000, false, true)),  // a claimed poll writes its own schedule
            ([.schedulePoll(.never)], (3000, false, false), false, (nil, false, false)),
            ([.warn("x"), .openAnalyticsJob(generation: 1)], (3000, false, true), false, (3000, false, true)),  // not about polls
        ] as [([BookAction], (TimeInterval?, Bool, Bool), Bool, (TimeInterval?, Bool, Bool))]
    )
    func aTransitionsPollActionsMoveThePendingPollAsTheRulesSay(
        actions: [BookAction],
        before: (TimeInterval?, Bool, Bool),
        laterRequest: Bool,
        after: (TimeInterval?, Bool, Bool)
    ) {
        let context = PollContext(
            now: now,
            lastWebhookAt: now.addingTimeInterval(-10),
            finishedAt: nil,
            webhooksSilent: false,
            webhooksTrusted: false,
            unitRandom: 0
        )
        let result = schedule.apply(
            actions,
            to: slot(before.0, urgent: before.1, claimed: before.2),
            laterRequest: laterRequest,
            context: context
        )
        #expect(result == slot(after.0, urgent: after.1, claimed: after.2))
    }

    @Test func scheduledTimesAreWholeMilliseconds() throws {
        let context = PollContext(
            now: now.addingTimeInterval(0.000_4),
            lastWebhookAt: nil,
            finishedAt: nil,
            webhooksSilent: false,
            webhooksTrusted: false,
            unitRandom: 0.123_456_789
        )
        let result = schedule.apply([.schedulePoll(.soon)], to: slot(nil), laterRequest: false, context: context)
        let millis = try #require(result.next).timeIntervalSince1970 * 1000
        #expect(millis == millis.rounded())
    }

    // MARK: tightening, freshness, retries

    @Test(
        arguments: [
            // (next in s from now, finished, u, expected s from now or nil): spreads 120 s (processing), 1800 s (finished)
            (3000.0, false, 0.0, 60.0 as TimeInterval?),
            (3000, false, 0.5, 90),
            (3000, false, 1, 119.999),  // the upper end is open
            (120, false, 0.5, nil),  // within the spread: stays
            (120.001, false, 0, 60),
            (3000, true, 0, 900),
            (3000, true, 0.5, 1350),
            (1800, true, 0, nil),
            (100_000, true, 0.25, 1125),
        ] as [(TimeInterval, Bool, Double, TimeInterval?)]
    )
    func tighteningPullsLatePollsIntoTheUpperHalfOfTheSpread(next: TimeInterval, finished: Bool, u: Double, expected: TimeInterval?) {
        let result = schedule.tightened(now.addingTimeInterval(next), finished: finished, now: now, unitRandom: u)
        #expect(result.map { (($0.timeIntervalSince(now)) * 1000).rounded() / 1000 } == expected)
    }

    @Test func tighteningDrawsNoJitterForAPollThatStays() {
        var draws = 0
        func tighten(_ next: TimeInterval) -> Date? {
            schedule.tightened(
                now.addingTimeInterval(next),
                finished: false,
                now: now,
                unitRandom: {
                    draws += 1
                    return 0.5
                }()
            )
        }
        #expect(tighten(10) == nil && draws == 0)
        #expect(tighten(1000) != nil && draws == 1)
    }

    @Test func aJobGoesAheadOnAnAnswerNoOlderThanTwoMinima() {
        #expect(schedule.confirmFreshness == 120)
        #expect(PollSchedule(minimum: 5, maximum: 100).confirmFreshness == 10)
    }

    @Test(
        arguments: [
            // (failures, u, Retry-After, expected s): base 10, cap = maximum 1800
            (1, 1.0, nil as TimeInterval?, 10.0),
            (1, 0, nil, 5),
            (2, 1, nil, 20),
            (3, 1, nil, 40),
            (9, 1, nil, 1800),  // 10 * 256 capped at the maximum
            (50, 0, nil, 900),
            (1, 1, 60, 60),  // Retry-After is a lower bound
            (0, 0, nil, 5),
        ] as [(Int, Double, TimeInterval?, TimeInterval)]
    )
    func failedPollsBackOffDoublingToTheMaximum(failures: Int, u: Double, retryAfter: TimeInterval?, expected: TimeInterval) {
        #expect(schedule.retryDelay(failures: failures, base: 10, retryAfter: retryAfter, unitRandom: u) == expected)
    }
}
