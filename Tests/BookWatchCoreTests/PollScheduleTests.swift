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
        #expect(polls == [4, 8, 16, 32, 64, 128, 256], "in maxima after the finish: 7 polls in a week instead of 336")
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

    /// A deleted Book is polled at about 1, 2, 4... maxima after it was first seen gone, within
    /// the retention window, so a deletion believed during an incident undoes itself.
    @Test func afterGonePollsDoubleFromTheFirstGoneAnswerWithinTheWindow() {
        let week = PollSchedule(minimum: 60, maximum: 1800, retention: 7 * 86400)
        var polls: [TimeInterval] = []
        var at = now
        while let next = week.nextPoll(cadence: .afterGone, lastWebhookAt: nil, now: at, webhooksSilent: true, unitRandom: 0, goneSince: now) {
            polls.append(next.timeIntervalSince(now) / 1800)
            at = next
        }
        #expect(polls == [1, 2, 4, 8, 16, 32, 64, 128, 256])
        #expect(week.nextPoll(cadence: .afterGone, lastWebhookAt: nil, now: now, webhooksSilent: true, unitRandom: 0) == nil, "no date: no poll")
        // Retention off (0 hours): no poll after a deletion either.
        let off = PollSchedule(minimum: 60, maximum: 1800, retention: 0)
        #expect(off.nextPoll(cadence: .afterGone, lastWebhookAt: nil, now: now, webhooksSilent: false, unitRandom: 0, goneSince: now) == nil)
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

    func candidate(next: TimeInterval, finished: Bool = false, heard: TimeInterval) -> TighteningCandidate {
        TighteningCandidate(next: now.addingTimeInterval(next), finished: finished, lastHeard: now.addingTimeInterval(-heard))
    }

    func offsets(_ dates: [Date?]) -> [TimeInterval?] { dates.map { $0.map { ($0.timeIntervalSince(now) * 1000).rounded() / 1000 } } }

    @Test func tighteningSpacesTheMovedPollsEvenlyOverTheSpreadStalestFirst() {
        // Spread 120 s (twice the minimum): four processing Books move, one is soon enough.
        let candidates = [
            candidate(next: 3000, heard: 10),
            candidate(next: 3000, heard: 900),  // heard from longest ago: first
            candidate(next: 100, heard: 5000),  // within the spread: stays, draws nothing
            candidate(next: 120.001, heard: 300),
            candidate(next: 5000, heard: 300),  // same as the one before: given order breaks the tie
        ]
        var draws = 0
        let moved = schedule.tightened(candidates, now: now) {
            draws += 1
            return 0.5
        }
        #expect(offsets(moved) == [105, 15, nil, 45, 75])  // slots of 30 s, each at its middle
        #expect(draws == 4)
        #expect(offsets(schedule.tightened(candidates, now: now) { 0 }) == [90, 0, nil, 30, 60])
        #expect(offsets(schedule.tightened(candidates, now: now) { 1 }) == [119.999, 29.999, nil, 59.999, 89.999])  // the end is open
    }

    @Test func tighteningUsesTheSilentIntervalForProcessingBooksAndTheMaximumForFinishedOnes() {
        let candidates = [
            candidate(next: 3000, heard: 10),
            candidate(next: 3000, finished: true, heard: 10),
            candidate(next: 1800, finished: true, heard: 10),  // within the maximum: stays
            candidate(next: 3000, finished: true, heard: 20),
            candidate(next: 95, heard: 10),  // within a 100 s interval: stays
        ]
        let moved = schedule.tightened(candidates, now: now, silentInterval: 100) { 0 }
        #expect(offsets(moved) == [0, 900, nil, 0, nil])
        // Without a known interval the processing spread is twice the minimum: the 95 s poll stays too.
        #expect(offsets(schedule.tightened([candidate(next: 121, heard: 1)], now: now, silentInterval: nil) { 0.5 }) == [60])
        #expect(offsets(schedule.tightened([candidate(next: 121, heard: 1)], now: now, silentInterval: 100) { 0.5 }) == [50])
    }

    @Test(
        arguments: [
            // (Books processing, rate, expected interval): a minimum of 60 s, a maximum of 1800 s
            (380, 5.0, 100.0),  // 380 Books, each every 95 s on average: 4 of the 5 requests/s
            (304, 5, 80),
            (10, 5, 60 / 0.9),  // few Books: never more often than the minimum, jitter included
            (0, 5, 60 / 0.9),
            (2000, 5, 120),  // many: never less often than twice the minimum
            (400, 0, 120),  // no rate known
            (400, .infinity, 120),
        ] as [(Int, Double, TimeInterval)]
    )
    func theSilentIntervalSharesFourFifthsOfTheRateAmongTheBooksProcessing(processing: Int, rate: Double, expected: TimeInterval) {
        #expect(abs(schedule.silentInterval(processing: processing, rate: rate) - expected) < 1e-9)
    }

    @Test(
        arguments: [
            // (finished Books with a retention poll, rate, expected interval): a maximum of 1800 s
            (7000, 5.0, 7000 / 0.475),  // 1,000 Books a day over a week: 0.475 requests/s, every 4.1 hours
            (855, 5, 1800),  // about as many as the maximum sustains at a tenth of 5 requests/s
            (1710, 5, 3600),
            (0, 5, 1800),
            (7000, 0, 1800),  // no rate known: the maximum, as before
            (7000, .infinity, 1800),
        ] as [(Int, Double, TimeInterval)]
    )
    func theFinishedIntervalSharesATenthOfTheRateAmongTheFinishedBooks(finished: Int, rate: Double, expected: TimeInterval) {
        #expect(abs(schedule.finishedInterval(finished: finished, rate: rate) - expected) < 1e-6)
    }

    @Test func untrustedRetentionPollsNeverComeSoonerThanTheFinishedInterval() {
        let week = PollSchedule(minimum: 60, maximum: 1800, retention: 7 * 86400)
        func next(trusted: Bool, finishedAgo: TimeInterval, interval: TimeInterval?, u: Double = 0) -> TimeInterval? {
            week.nextPoll(
                cadence: .retention,
                lastWebhookAt: nil,
                now: now,
                webhooksSilent: !trusted,
                unitRandom: u,
                finishedAt: now.addingTimeInterval(-finishedAgo),
                webhooksTrusted: trusted,
                finishedInterval: interval
            )
            .map { $0.timeIntervalSince(now) }
        }
        // Untrusted: the interval the budget allows when it is longer than the maximum, less the jitter.
        #expect(next(trusted: false, finishedAgo: 3600, interval: 14_000) == 14_000)
        #expect(next(trusted: false, finishedAgo: 3600, interval: 14_000, u: 1) == 12_600)
        #expect(next(trusted: false, finishedAgo: 3600, interval: 1800) == 1800)
        #expect(next(trusted: false, finishedAgo: 3600, interval: nil) == 1800)
        // Trusted: the Book's finished age, the doubling (far cheaper than polling at the interval).
        #expect(next(trusted: true, finishedAgo: 20_000, interval: 14_000) == 20_000)
        #expect(next(trusted: true, finishedAgo: 9000, interval: 14_000) == 9000)
        // ... and at least four maxima (trustedRetentionStart) however recent the finish.
        #expect(next(trusted: true, finishedAgo: 3600, interval: 14_000) == 7200)
        // A window shorter than that keeps one poll, at its end (not none at all).
        func firstTrusted(retention: TimeInterval) -> Date? {
            PollSchedule(minimum: 60, maximum: 1800, retention: retention)
                .nextPoll(
                    cadence: .retention,
                    lastWebhookAt: nil,
                    now: now,
                    webhooksSilent: false,
                    unitRandom: 0,
                    finishedAt: now,
                    webhooksTrusted: true
                )
        }
        #expect(firstTrusted(retention: 3600) == now.addingTimeInterval(3600))
        #expect(firstTrusted(retention: 1000) == nil, "shorter than the maximum: none, as before")
        // The retention window still ends the polls.
        #expect(next(trusted: false, finishedAgo: 7 * 86400 - 10_000, interval: 14_000) == nil)
    }

    @Test func tighteningSpreadsFinishedBooksOverTheFinishedIntervalWhenLonger() {
        let candidates = [
            candidate(next: 9000, finished: true, heard: 10),
            candidate(next: 3000, finished: true, heard: 20),  // within a 4000 s interval: stays
            candidate(next: 9000, finished: true, heard: 30),
        ]
        #expect(offsets(schedule.tightened(candidates, now: now, finishedInterval: 4000) { 0 }) == [2000, nil, 0])
        // An interval shorter than the maximum changes nothing: within the maximum, as before.
        #expect(offsets(schedule.tightened(candidates, now: now, finishedInterval: 600) { 0 }) == [1200, 600, 0])
    }

    @Test func aSilentPollIsNeverSoonerThanTheMinimum() throws {
        for processing in [0, 10, 300] {
            let interval = schedule.silentInterval(processing: processing, rate: 5)
            for u in [0, 0.5, 0.999] {
                let next = schedule.nextPoll(
                    cadence: .active,
                    lastWebhookAt: nil,
                    now: now,
                    webhooksSilent: true,
                    unitRandom: u,
                    silentInterval: interval
                )
                #expect(try #require(next).timeIntervalSince(now) >= 60 - 1e-9)
            }
        }
        // Even when a short maximum caps the interval under the minimum over 0.9.
        let short = PollSchedule(minimum: 60, maximum: 62)
        let next = short.nextPoll(
            cadence: .active,
            lastWebhookAt: nil,
            now: now,
            webhooksSilent: true,
            unitRandom: 1,
            silentInterval: short.silentInterval(processing: 0, rate: 5)
        )
        #expect(next == now.addingTimeInterval(60))
    }

    @Test func theSilentIntervalNeverExceedsAShortMaximum() {
        let short = PollSchedule(minimum: 60, maximum: 90)
        #expect(short.silentInterval(processing: 1000, rate: 1) == 90)
        #expect(short.tighteningSpread(finished: false) == 90)  // the same ceiling when the budget is not known
    }

    @Test func aSilentBookIsPolledAtTheIntervalLessUpToATenth() {
        func next(silent: Bool, interval: TimeInterval?, u: Double) -> TimeInterval? {
            schedule.nextPoll(cadence: .active, lastWebhookAt: nil, now: now, webhooksSilent: silent, unitRandom: u, silentInterval: interval)?
                .timeIntervalSince(now)
        }
        #expect(next(silent: true, interval: 100, u: 0) == 100)
        #expect(next(silent: true, interval: 100, u: 1) == 90)
        #expect(next(silent: true, interval: nil, u: 0) == 60)  // unknown budget: full jitter from the minimum
        #expect(next(silent: false, interval: 100, u: 1) == 450)  // not silent: the interval plays no part
        // The transition's context carries it.
        let context = PollContext(
            now: now,
            lastWebhookAt: nil,
            finishedAt: nil,
            webhooksSilent: true,
            webhooksTrusted: false,
            unitRandom: 0.5,
            silentInterval: 80
        )
        let slot = schedule.apply(
            [.schedulePoll(.active)],
            to: PollSlot(next: nil, reason: nil, claimed: false),
            laterRequest: false,
            context: context
        )
        #expect(slot.next == now.addingTimeInterval(76))
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
