import BookWatchCore
import Foundation
import Testing

/// Outage detection: silence judged against the deployment's own arrival rate per Book processing.
@Suite struct WebhookArrivalsTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// Ten minutes of one delivery a second with `processing` Books processing, sampled every 10 s.
    func steady(processing: Int, perSecond: Double = 1) -> WebhookArrivals {
        var arrivals = WebhookArrivals()
        for step in 0...60 {
            let at = Self.t0.addingTimeInterval(Double(step) * 10)
            arrivals.record(.init(at: at, inboxID: Int64(Double(step) * 10 * perSecond), processing: processing))
        }
        return arrivals
    }

    var last: Date { Self.t0.addingTimeInterval(600) }

    /// `suspectsOutage`, for `#expect` (which cannot call a mutating method).
    func ask(_ arrivals: inout WebhookArrivals, now: Date, lastWebhook: Date, floor: TimeInterval) -> Bool {
        arrivals.suspectsOutage(now: now, lastWebhook: lastWebhook, floor: floor)
    }

    @Test func silenceForManyExpectedGapsWhileBooksProcessIsAnOutage() throws {
        var arrivals = steady(processing: 100)
        // 1 a second over 100 Books: 0.01 per Book-second; with 100 processing a gap of 1 s, so
        // 10 s of silence would do, but never less than the floor (the poll minimum).
        let rate = try #require(arrivals.ratePerProcessingBook(until: last))
        #expect(abs(rate - 0.01) < 1e-9)
        #expect(arrivals.expectedGap(processing: 100, until: last) == 1)
        #expect(!ask(&arrivals, now: last.addingTimeInterval(59), lastWebhook: last, floor: 60))
        #expect(ask(&arrivals, now: last.addingTimeInterval(61), lastWebhook: last, floor: 60))
        #expect(arrivals.suspectedSince == last.addingTimeInterval(61))
        // It holds while nothing newer arrives, and ends with the next delivery.
        #expect(ask(&arrivals, now: last.addingTimeInterval(3_000), lastWebhook: last, floor: 60))
        #expect(!ask(&arrivals, now: last.addingTimeInterval(3_001), lastWebhook: last.addingTimeInterval(3_000), floor: 60))
        #expect(arrivals.suspectedSince == nil)
    }

    @Test func fewerBooksProcessingStretchTheExpectedGapSoTheEndOfABatchIsNoOutage() {
        var arrivals = steady(processing: 100)
        // The batch tapers: 2 Books left, which send one delivery every 50 s between them.
        arrivals.record(.init(at: last.addingTimeInterval(5), inboxID: 600, processing: 2))
        #expect(arrivals.expectedGap(processing: 2, until: last) == 50)
        #expect(!ask(&arrivals, now: last.addingTimeInterval(400), lastWebhook: last, floor: 60))
        #expect(ask(&arrivals, now: last.addingTimeInterval(501), lastWebhook: last, floor: 60))
    }

    @Test func nothingProcessingOrTooFewArrivalsMeasureNothing() {
        var idle = steady(processing: 100)
        idle.record(.init(at: last.addingTimeInterval(5), inboxID: 600, processing: 0))
        #expect(!ask(&idle, now: last.addingTimeInterval(3_000), lastWebhook: last, floor: 60))
        var sparse = steady(processing: 100, perSecond: 0.03)  // 18 deliveries in ten minutes
        #expect(sparse.ratePerProcessingBook(until: last) == nil)
        #expect(!ask(&sparse, now: last.addingTimeInterval(3_000), lastWebhook: last, floor: 60))
    }

    @Test func aQuietSpellAlreadySeenWhileBooksProcessedRaisesTheBar() throws {
        // Bursts: 60 deliveries in 10 s, then 110 s of nothing, five times over (100 Books processing).
        var arrivals = WebhookArrivals()
        var id: Int64 = 0
        for step in 0...60 {
            if step % 12 == 0 { id += 60 }
            arrivals.record(.init(at: Self.t0.addingTimeInterval(Double(step) * 10), inboxID: id, processing: 100))
        }
        let lastWebhook = Self.t0.addingTimeInterval(600)
        #expect(arrivals.longestQuietSpell(until: lastWebhook) == 110)
        #expect(arrivals.lastRise == lastWebhook)
        // The expected gap alone (0.5 s) would call 61 s of quiet an outage; the spells seen say 165 s.
        #expect(!ask(&arrivals, now: lastWebhook.addingTimeInterval(120), lastWebhook: lastWebhook, floor: 60))
        #expect(ask(&arrivals, now: lastWebhook.addingTimeInterval(166), lastWebhook: lastWebhook, floor: 60))
    }

    @Test func deliveriesWhileNothingProcessedAndAShortHistoryMeasureNothing() {
        var idle = WebhookArrivals()
        for step in 0...60 {
            // A hundred deliveries every reading, but no Book processing until the last one.
            idle.record(.init(at: Self.t0.addingTimeInterval(Double(step) * 10), inboxID: Int64(step) * 100, processing: step == 60 ? 1 : 0))
        }
        #expect(idle.ratePerProcessingBook(until: last) == nil)
        var young = WebhookArrivals()
        for step in 0...30 {
            young.record(.init(at: Self.t0.addingTimeInterval(Double(step) * 10), inboxID: Int64(step) * 10, processing: 100))
        }
        #expect(young.ratePerProcessingBook(until: Self.t0.addingTimeInterval(300)) == nil)
    }

    @Test func readingsAreTakenEverySampleIntervalKeptForTheWindowAndResetWhenTheClockStepsBack() {
        var arrivals = steady(processing: 10)
        #expect(!arrivals.wantsSample(at: last.addingTimeInterval(9)))
        #expect(arrivals.wantsSample(at: last.addingTimeInterval(10)))
        #expect(arrivals.wantsSample(at: last.addingTimeInterval(-1)))
        arrivals.record(.init(at: last.addingTimeInterval(WebhookArrivals.window), inboxID: 700, processing: 10))
        #expect(arrivals.samples.first?.at == last)
        arrivals.record(.init(at: Self.t0, inboxID: 0, processing: 10))
        #expect(arrivals.samples.count == 1)
    }
}
