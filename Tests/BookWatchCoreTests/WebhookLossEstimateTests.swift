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

/// Only the kinds of event a deployment receives count: documents where they arrive, else Book
/// finishes.
@Suite struct WebhookLossKindTests {
    static let t0 = Date(timeIntervalSince1970: 1_774_000_000)

    @Test func nothingCountsBeforeAKindArrivesAndDocumentsTakePrecedence() {
        var estimate = WebhookLossEstimate()
        #expect(estimate.measuredKind(at: Self.t0) == nil)
        let changed = estimate.observe(.documents, announced: 0, missed: 20, at: Self.t0)
        #expect(!changed)
        #expect(estimate.lossRatio == nil)

        estimate.noteReceived(.bookFinishes, at: Self.t0)
        #expect(estimate.measuredKind(at: Self.t0) == .bookFinishes)
        estimate.observe(.documents, announced: 0, missed: 20, at: Self.t0)  // no document event arrives: ignored
        estimate.observe(.bookFinishes, announced: 10, missed: 0, at: Self.t0)
        #expect(estimate.lossRatio == 0)
        #expect(!estimate.isLossy)

        estimate.noteReceived(.documents, at: Self.t0.addingTimeInterval(10))
        #expect(estimate.measuredKind(at: Self.t0.addingTimeInterval(10)) == .documents)
        estimate.observe(.bookFinishes, announced: 0, missed: 5, at: Self.t0.addingTimeInterval(10))  // beside documents: ignored
        #expect(estimate.lossRatio == 0)

        // A day without document events: Book finishes count again.
        let later = Self.t0.addingTimeInterval(WebhookLossEstimate.receivingWindow + 60)
        estimate.noteReceived(.bookFinishes, at: later)
        #expect(estimate.measuredKind(at: later) == .bookFinishes)
        #expect(estimate.receives(.documents, at: later) == false)
    }

    @Test func anEarlierArrivalNeverMovesTheStampBack() {
        var estimate = WebhookLossEstimate()
        estimate.noteReceived(.documents, at: Self.t0.addingTimeInterval(100))
        estimate.noteReceived(.documents, at: Self.t0)
        #expect(estimate.lastReceived[.documents] == Self.t0.addingTimeInterval(100))
    }

    @Test func kindsSurviveStorageAndOldEstimatesStillDecode() throws {
        var estimate = WebhookLossEstimate()
        estimate.noteReceived(.bookFinishes, at: Self.t0)
        estimate.observe(.bookFinishes, announced: 9, missed: 1, at: Self.t0)
        let decoded = try JSONDecoder().decode(WebhookLossEstimate.self, from: JSONEncoder().encode(estimate))
        #expect(decoded == estimate)
        let old = #"{"announced": 5, "missed": 5, "isLossy": true, "judged": true}"#
        let fromOld = try JSONDecoder().decode(WebhookLossEstimate.self, from: Data(old.utf8))
        #expect(fromOld.lastReceived.isEmpty)
        #expect(fromOld.lossRatio == 0.5)
    }

    @Test func eventsProveTheirKind() {
        #expect(WebhookLossEstimate.Kind(receiving: .documentVerified) == .documents)
        #expect(WebhookLossEstimate.Kind(receiving: .documentStatus) == .documents)
        #expect(WebhookLossEstimate.Kind(receiving: .bookVerified) == .bookFinishes)
        // Only the event that comes at the finish itself: a late one of the previous generation
        // must not announce the next.
        #expect(WebhookLossEstimate.Kind(receiving: .bookCompleted) == nil)
        #expect(WebhookLossEstimate.Kind(receiving: .bookAnalyticsGenerated) == nil)
        #expect(WebhookLossEstimate.Kind(receiving: .documentUploaded) == nil)
        #expect(WebhookLossEstimate.Kind(receiving: .bookClassified) == nil)
    }
}

/// A Book's finish: announced by a book-level event, or not (decided `statusLag` after a status
/// answer showed it, since events and answers are not ordered).
@Suite struct BookFinishCoverageTests {
    typealias F = Fixture

    static func finishes(_ actions: [BookAction]) -> [Bool] {
        actions.compactMap { if case .bookFinishCoverage(let announced) = $0 { announced } else { nil } }
    }

    /// A Book past its first snapshot, processing documents 1 and 2.
    static func processing() -> BookMachine {
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verifying(finished: [], unfinished: [1, 2]), at: F.t0)
        return machine
    }

    @Test func aFinishAnnouncedBeforeTheAnswerCountsAnnounced() {
        var machine = Self.processing()
        #expect(Self.finishes(machine.apply(F.hint(.bookVerified), at: F.t0.plus(10))) == [])
        #expect(machine.finishEvidence == .announced)
        #expect(Self.finishes(machine.apply(F.verified(1, 2), at: F.t0.plus(11))) == [true])
        #expect(machine.finishEvidence == nil)
    }

    @Test func anUnannouncedFinishCountsMissedOnlyAfterTheLag() {
        var machine = Self.processing()
        #expect(Self.finishes(machine.apply(F.verified(1, 2), at: F.t0.plus(10))) == [])
        #expect(machine.finishEvidence == .unannounced(since: F.t0.plus(10)))
        // Within the lag nothing is decided; after it, the next input counts the miss once.
        #expect(Self.finishes(machine.apply(F.verified(1, 2), at: F.t0.plus(10 + BookMachine.statusLag))) == [])
        #expect(Self.finishes(machine.apply(F.verified(1, 2), at: F.t0.plus(11 + BookMachine.statusLag))) == [false])
        #expect(Self.finishes(machine.apply(F.verified(1, 2), at: F.t0.plus(12 + BookMachine.statusLag))) == [])
    }

    @Test func anEventLateWithinTheLagCountsAnnounced() {
        var machine = Self.processing()
        _ = machine.apply(F.verified(1, 2), at: F.t0.plus(10))
        #expect(Self.finishes(machine.apply(F.hint(.bookVerified), at: F.t0.plus(40))) == [true])
        #expect(machine.finishEvidence == nil)
        #expect(Self.finishes(machine.apply(F.verified(1, 2), at: F.t0.plus(1000))) == [])
    }

    @Test func onlyTheVerifiedEventAnnouncesAndAReopenOrDeletionForgetsIt() {
        var machine = Self.processing()
        // A late `book.completed` of an earlier generation arriving while this one processes.
        _ = machine.apply(F.hint(.bookCompleted), at: F.t0.plus(5))
        #expect(machine.finishEvidence == nil)
        _ = machine.apply(F.verified(1, 2), at: F.t0.plus(10))
        #expect(machine.finishEvidence == .unannounced(since: F.t0.plus(10)))
        // Reopened within the lag: the pending decision stays with the finished generation.
        _ = machine.apply(F.verifying(finished: [1, 2], unfinished: [3]), at: F.t0.plus(20))
        #expect(machine.finishEvidence == .unannounced(since: F.t0.plus(10)))
        // Its late event counts for it, not for the reopened generation.
        #expect(Self.finishes(machine.apply(F.hint(.bookVerified), at: F.t0.plus(30))) == [true])
        #expect(machine.finishEvidence == nil)
        _ = machine.apply(F.hint(.bookVerified), at: F.t0.plus(35))
        #expect(machine.finishEvidence == .announced)
        _ = machine.apply(.snapshot(.gone), at: F.t0.plus(40))
        _ = machine.apply(.snapshot(.gone), at: F.t0.plus(40 + BookMachine.defaultConfirmationGap))
        #expect(machine.phase == .deleted)
        #expect(machine.finishEvidence == nil)
    }

    /// A `book.verified` held back past a reopen: the finished generation counts announced, and
    /// the reopened one, finishing with no event of its own, counts missed.
    @Test func aLateEventAcrossAReopenCountsForItsOwnGeneration() {
        var machine = Self.processing()
        #expect(Self.finishes(machine.apply(F.verified(1, 2), at: F.t0.plus(10))) == [])
        #expect(Self.finishes(machine.apply(F.verifying(finished: [1, 2], unfinished: [3]), at: F.t0.plus(15))) == [])
        #expect(Self.finishes(machine.apply(F.hint(.bookVerified), at: F.t0.plus(40))) == [true])
        #expect(Self.finishes(machine.apply(F.verified(1, 2, 3), at: F.t0.plus(100))) == [])
        #expect(Self.finishes(machine.apply(F.verified(1, 2, 3), at: F.t0.plus(500))) == [false])
    }

    @Test func aFirstSnapshotSaysNothingUnlessWatchedSinceCreation() {
        var machine = BookMachine(uuid: F.uuid)
        #expect(Self.finishes(machine.apply(F.verified(1), at: F.t0)) == [])
        #expect(machine.finishEvidence == nil)
    }

    @Test func theNextGenerationStartsWithoutEvidence() {
        var machine = Self.processing()
        _ = machine.apply(F.hint(.bookVerified), at: F.t0.plus(10))
        _ = machine.apply(F.verified(1, 2), at: F.t0.plus(11))
        _ = machine.apply(.analytics(generation: 1, .stored), at: F.t0.plus(12))
        // An event about the finished generation announces nothing new.
        _ = machine.apply(F.hint(.bookVerified), at: F.t0.plus(13))
        #expect(machine.finishEvidence == nil)
        // Reopened by a new document, then finished with no event: unannounced.
        _ = machine.apply(F.verifying(finished: [1, 2], unfinished: [3]), at: F.t0.plus(20))
        #expect(Self.finishes(machine.apply(F.verified(1, 2, 3), at: F.t0.plus(30))) == [])
        #expect(machine.finishEvidence == .unannounced(since: F.t0.plus(30)))
    }
}
