import BookWatchCore
import Foundation
import Testing

@Suite struct BookMachineTests {
    typealias F = Fixture

    // MARK: track / untrack / retry

    @Test func operatorTrackPollsAtOnce() {
        let (machine, actions) = F.machine(after: [.command(.track(.operator))])
        #expect(machine.phase == .tracking)
        #expect(machine.generation == 1)
        #expect(actions == [.pollNow(.operator)])
    }

    @Test func autoTrackFromAWebhookWaitsForTheSchedule() {
        let (machine, actions) = F.machine(after: [.command(.track(.webhook))])
        #expect(machine.phase == .tracking)
        #expect(actions == [.schedulePoll(.active)])
    }

    @Test func untrackStopsWatching() {
        let (_, actions) = F.machine(after: [F.verifying(finished: [], unfinished: [1]), .command(.untrack)])
        #expect(actions == [.stopWatching])
    }

    @Test func untrackWhileRetrievingKeepsTheJobForATrackToResume() {
        let (machine, actions) = F.machine(after: [F.verified(1), .command(.untrack)])
        #expect(actions == [.stopWatching])
        #expect(machine.phase == .retrieving && machine.generation == 1)
    }

    @Test func aBookRetrievedBeforeItWasMarkedDeletedComesBackComplete() {
        let (machine, actions) = F.machine(after: [
            F.verified(1), .analytics(generation: 1, .stored), .snapshot(.gone), .snapshot(.gone), F.verified(1),
        ])
        #expect(machine.phase == .complete && machine.generation == 1 && machine.lastOpenedGeneration == 1)
        #expect(!actions.contains { if case .openAnalyticsJob = $0 { true } else { false } })
        // Deleted while retrieving: its job was superseded, so it needs a new generation.
        let (retrieving, opened) = F.machine(after: [F.verified(1), .snapshot(.gone), .snapshot(.gone), F.verified(1)])
        #expect(retrieving.phase == .retrieving && retrieving.generation == 2)
        #expect(opened.contains(.openAnalyticsJob(generation: 2)))
    }

    @Test func retryRearmsAFailedJobInTheSameGeneration() {
        let (machine, actions) = F.machine(after: [
            F.verified(1), .analytics(generation: 1, .permanentError("no permission")), .command(.retry),
        ])
        #expect(machine.phase == .retrieving)
        #expect(machine.generation == 1)
        #expect(machine.failureReason == nil)
        #expect(actions == [.rearmAnalyticsJob(generation: 1), .pollWithin(.active)])
    }

    @Test func untrackKeepsTheStateSoATrackResumesWithoutRetrievingAgain() {
        // Untracked while complete: a later track reads the Book and, finished as before, opens nothing.
        let (complete, actions) = F.machine(after: [
            F.verified(1), .analytics(generation: 1, .stored), .command(.untrack), .command(.track(.operator)), F.verified(1),
        ])
        #expect(complete.phase == .complete)
        #expect(complete.lastOpenedGeneration == 1)
        #expect(!actions.contains { if case .openAnalyticsJob = $0 { true } else { false } })
        // Untracked while retrieving: the job stays, and the answer after a track confirms it.
        let (retrieving, confirmed) = F.machine(after: [F.verified(1), .command(.untrack), .command(.track(.operator)), F.verified(1)])
        #expect(retrieving.phase == .retrieving && retrieving.generation == 1)
        #expect(confirmed.first == .confirmAnalyticsJob(generation: 1))
    }

    @Test func aRefusedPollMarksTheBookFailedAndRetryLooksAgain() {
        // Two refusals (the fixture's gap is one second): refused for good.
        let refused = BookInput.pollRefused("403 code 2102")
        let (failed, actions) = F.machine(after: [F.verifying(finished: [], unfinished: [1]), refused, refused])
        #expect(failed.phase == .failed)
        #expect(failed.failureReason == "403 code 2102")
        #expect(failed.failedWithoutJob)
        #expect(actions == [.schedulePoll(.never)])
        let (again, retried) = F.machine(after: [F.verifying(finished: [], unfinished: [1]), refused, refused, .command(.retry)])
        #expect(again.phase == .processing)
        #expect(retried == [.pollNow(.operator)])
        // An answer after a refusal carries on as if processing.
        let (finished, opened) = F.machine(after: [F.verifying(finished: [], unfinished: [1]), refused, refused, F.verified(1)])
        #expect(finished.phase == .retrieving)
        #expect(finished.failureReason == nil)
        #expect(opened.first == .openAnalyticsJob(generation: 1))
        // While retrieving: the job fails with the reason, and retry re-arms it.
        let (retrieving, failedJob) = F.machine(after: [F.verified(1), .pollRefused("403"), .pollRefused("403")])
        #expect(retrieving.phase == .failed && !retrieving.failedWithoutJob)
        #expect(failedJob == [.failAnalyticsJob(generation: 1, reason: "403"), .schedulePoll(.never)])
        // A complete Book stays complete and keeps watching for a reopen (chaos seed 46): the
        // refusal may lift, and a reopen after it must still be seen.
        let (complete, watching) = F.machine(after: [F.verified(1), .analytics(generation: 1, .stored), .pollRefused("403")])
        #expect(complete.phase == .complete)
        #expect(watching == [.warn("status refused after completion: 403"), .schedulePoll(.retention)])
    }

    /// One refusal (a permission flapping, a stray code inside a 200) is a doubt: the Book keeps
    /// its phase and is asked again soon; a second refusal too soon after it confirms nothing, and
    /// an answer showing the Book clears it.
    @Test func oneRefusalIsADoubtThatASecondAGapApartConfirms() {
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verifying(finished: [], unfinished: [1]), at: F.t0)
        let first = machine.apply(.pollRefused("403"), at: F.t0.plus(10), confirmationGap: 60)
        #expect(first == [.warn("status refused: 403; a second answer confirms"), .schedulePoll(.soon)])
        #expect(machine.phase == .processing && machine.doubt?.kind == .refused)
        #expect(machine.apply(.pollRefused("403"), at: F.t0.plus(30), confirmationGap: 60) == [.schedulePoll(.soon)])
        #expect(machine.phase == .processing)
        // The refusal lifts: the answer clears the doubt, and a later refusal starts a new one.
        _ = machine.apply(F.verifying(finished: [], unfinished: [1]), at: F.t0.plus(90), confirmationGap: 60)
        #expect(machine.doubt == nil)
        _ = machine.apply(.pollRefused("403"), at: F.t0.plus(100), confirmationGap: 60)
        #expect(machine.phase == .processing)
        #expect(machine.apply(.pollRefused("403"), at: F.t0.plus(160), confirmationGap: 60) == [.schedulePoll(.never)])
        #expect(machine.phase == .failed && machine.failureReason == "403")
    }

    /// A refusal never replaces another doubt (alternating 1401 and 2102 answers would confirm
    /// neither): gone, refused, gone a gap after the first is a deletion.
    @Test func aRefusalLeavesAnotherDoubtAlone() {
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verifying(finished: [], unfinished: [1]), at: F.t0)
        _ = machine.apply(.snapshot(.gone), at: F.t0.plus(10), confirmationGap: 60)
        #expect(machine.apply(.pollRefused("403"), at: F.t0.plus(40), confirmationGap: 60) == [.warn("status refused: 403"), .schedulePoll(.soon)])
        #expect(machine.doubt == Doubt(kind: .gone, since: F.t0.plus(10)))
        _ = machine.apply(.snapshot(.gone), at: F.t0.plus(80), confirmationGap: 60)
        #expect(machine.phase == .deleted)
    }

    /// Failed with a job (its analytics refused): a refusal of the status call keeps the retention
    /// polls and the reason, as for a complete Book.
    @Test func aRefusalOfABookFailedWithAJobKeepsItsPolls() {
        let (machine, actions) = F.machine(after: [
            F.verified(1), .analytics(generation: 1, .permanentError("2102 on analytics")), .pollRefused("403"),
        ])
        #expect(machine.phase == .failed && machine.failureReason == "2102 on analytics")
        #expect(actions == [.warn("status refused: 403"), .schedulePoll(.retention)])
    }

    /// A refusal's doubt ends with the job (here its analytics failed for good): after `retry`, a
    /// new refusal is a doubt again, not confirmed by the old one.
    @Test func aRefusalDoubtEndsWithTheJob() {
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verified(1), at: F.t0)
        _ = machine.apply(.pollRefused("403"), at: F.t0.plus(10), confirmationGap: 60)
        _ = machine.apply(.analytics(generation: 1, .permanentError("400 on analytics")), at: F.t0.plus(20))
        #expect(machine.phase == .failed && machine.doubt == nil)
        _ = machine.apply(.command(.retry), at: F.t0.plus(30))
        #expect(machine.phase == .retrieving)
        _ = machine.apply(.pollRefused("403"), at: F.t0.plus(200), confirmationGap: 60)
        #expect(machine.phase == .retrieving && machine.doubt?.kind == .refused)
    }

    @Test func retryOutsideFailedOnlyWarns() {
        let (machine, actions) = F.machine(after: [F.verifying(finished: [], unfinished: [1]), .command(.retry)])
        #expect(machine.phase == .processing)
        #expect(actions == [.warn("nothing to retry: book is processing")])
    }

    // MARK: snapshots

    @Test func unfinishedSnapshotMeansProcessing() {
        let (machine, actions) = F.machine(after: [F.verifying(finished: [1], unfinished: [2])])
        #expect(machine.phase == .processing)
        #expect(machine.pk == 42)
        #expect(machine.confirmedDocuments.count == 2)
        #expect(actions == [.schedulePoll(.active)])
    }

    @Test func finishedSnapshotOpensTheJobOfGenerationOne() {
        let (machine, actions) = F.machine(after: [F.verifying(finished: [1], unfinished: [2]), F.verified(1, 2)])
        #expect(machine.phase == .retrieving)
        #expect(machine.generation == 1)
        #expect(machine.lastOpenedGeneration == 1)
        #expect(machine.finishedAt != nil)
        #expect(actions == [.openAnalyticsJob(generation: 1), .schedulePoll(.retention)])
    }

    @Test func finishedSnapshotStraightFromTracking() {
        let (machine, actions) = F.machine(after: [.command(.track(.operator)), F.verified(1)])
        #expect(machine.phase == .retrieving)
        #expect(actions.first == .openAnalyticsJob(generation: 1))
    }

    @Test func rejectedDocumentsStillFinishTheBook() {
        let (machine, _) = F.machine(after: [F.snapshot(.verified, [(1, .verificationComplete), (2, .rejected), (3, .deleted)])])
        #expect(machine.phase == .retrieving)
    }

    @Test func repeatedFinishedSnapshotOpensNothingMore() {
        let (machine, actions) = F.machine(after: [F.verified(1), F.verified(1), F.verified(1)])
        #expect(machine.lastOpenedGeneration == 1)
        #expect(actions == [.confirmAnalyticsJob(generation: 1), .schedulePoll(.retention)])
    }

    @Test func inconsistentSnapshotIsNotFinished() {
        let (machine, actions) = F.machine(after: [F.snapshot(.verified, [(1, .verificationComplete), (2, .verifying)])])
        #expect(machine.phase == .processing)
        #expect(actions == [.schedulePoll(.active)])
    }

    @Test func unknownDocumentStatusKeepsTheBookProcessingAndWarns() {
        let (machine, actions) = F.machine(after: [F.snapshot(.verified, [(1, .unknown("NEW_STATE"))])])
        #expect(machine.phase == .processing)
        #expect(actions.contains(.schedulePoll(.active)))
        #expect(actions.contains { if case .warn(let m) = $0 { m.contains("NEW_STATE") } else { false } })
    }

    @Test func unknownBookStatusIsInProgress() {
        let (machine, actions) = F.machine(after: [F.snapshot(.unknown("ARCHIVING"), [(1, .completed)])])
        #expect(machine.phase == .processing)
        #expect(machine.bookStatus == .unknown("ARCHIVING"))
        #expect(actions.contains { if case .warn(let m) = $0 { m.contains("ARCHIVING") } else { false } })
    }

    // MARK: reopen

    @Test func newUnfinishedDocumentAfterCompleteOpensTheNextGeneration() {
        let (machine, actions) = F.machine(after: [
            F.verified(1), .analytics(generation: 1, .stored), F.verifying(finished: [1], unfinished: [2]),
        ])
        #expect(machine.phase == .processing)
        #expect(machine.generation == 2)
        #expect(actions == [.schedulePoll(.active)])
        let (again, second) = F.machine(after: [
            F.verified(1), .analytics(generation: 1, .stored), F.verifying(finished: [1], unfinished: [2]), F.verified(1, 2),
        ])
        #expect(again.phase == .retrieving)
        #expect(second == [.openAnalyticsJob(generation: 2), .schedulePoll(.retention)])
    }

    @Test func newUnfinishedDocumentWhileRetrievingSupersedesTheOpenJob() {
        let (machine, actions) = F.machine(after: [F.verified(1), F.verifying(finished: [1], unfinished: [2])])
        #expect(machine.phase == .processing)
        #expect(machine.generation == 2)
        #expect(actions == [.supersedeAnalyticsJob(generation: 1), .schedulePoll(.active)])
    }

    @Test func newAlreadyFinishedDocumentAfterCompleteStillReopens() {
        // Document 2 was uploaded and finished between two polls: the analytics are stale.
        let (machine, actions) = F.machine(after: [F.verified(1), .analytics(generation: 1, .stored), F.verified(1, 2)])
        #expect(machine.phase == .retrieving)
        #expect(machine.generation == 2)
        #expect(actions == [.openAnalyticsJob(generation: 2), .schedulePoll(.retention)])
    }

    @Test func reopenFromFailedStartsAFreshGeneration() {
        let (machine, actions) = F.machine(after: [
            F.verified(1), .analytics(generation: 1, .permanentError("gone")), F.verified(1, 2),
        ])
        #expect(machine.phase == .retrieving)
        #expect(machine.generation == 2)
        #expect(machine.failureReason == nil)
        #expect(actions.first == .openAnalyticsJob(generation: 2))
    }

    // MARK: deletion

    @Test func deletedSnapshotEndsWatchingWhenASecondAnswerAgrees() {
        let (doubting, first) = F.machine(after: [F.verifying(finished: [], unfinished: [1]), F.snapshot(.deleted, [])])
        #expect(doubting.phase == .processing)
        #expect(doubting.doubt?.kind == .gone)
        #expect(first == [.warn("Ocrolus answered that the Book is gone; a second look confirms"), .schedulePoll(.soon)])
        let (deleted, actions) = F.machine(after: [F.verifying(finished: [], unfinished: [1]), F.snapshot(.deleted, []), .snapshot(.gone)])
        var machine = deleted
        #expect(machine.phase == .deleted)
        // The doubt stays, dated by the first gone answer: the slow polls after a deletion.
        #expect(machine.doubt == Doubt(kind: .gone, since: F.t0.plus(1)))
        #expect(actions == [.schedulePoll(.afterGone)])
        // Gone again at a slow poll: still deleted, dated from the first answer still.
        var again = machine
        #expect(again.apply(.snapshot(.gone), at: F.t0.plus(4000)) == [.schedulePoll(.afterGone)])
        #expect(again.doubt == Doubt(kind: .gone, since: F.t0.plus(1)))
        // A slow poll that shows the Book: it was never deleted, and watching goes on.
        #expect(
            machine.apply(F.verifying(finished: [], unfinished: [1]), at: F.t0.plus(4000)).first == .warn("book reappeared after being seen deleted")
        )
        #expect(machine.phase == .processing && machine.doubt == nil)
    }

    @Test func aGoneAnswerIsConfirmedOnlyByOneAskedAtLeastTheGapLater() {
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verified(1), at: F.t0)
        _ = machine.apply(.snapshot(.gone), at: F.t0.plus(10), confirmationGap: 60)
        // Asked 30 s after the first: too soon to agree.
        #expect(machine.apply(.snapshot(.gone), at: F.t0.plus(40), confirmationGap: 60) == [.schedulePoll(.soon)])
        #expect(machine.phase == .retrieving)
        // A present answer in between clears the doubt: the next gone answer starts a new one.
        _ = machine.apply(F.verified(1), at: F.t0.plus(50), confirmationGap: 60)
        #expect(machine.doubt == nil)
        _ = machine.apply(.snapshot(.gone), at: F.t0.plus(80), confirmationGap: 60)
        #expect(machine.phase == .retrieving)
        // Dated by when it was asked, not when it arrived.
        _ = machine.apply(.snapshot(.gone), at: F.t0.plus(200), answeredAsOf: F.t0.plus(100), confirmationGap: 60)
        #expect(machine.phase == .retrieving)
        let actions = machine.apply(.snapshot(.gone), at: F.t0.plus(201), answeredAsOf: F.t0.plus(140), confirmationGap: 60)
        #expect(machine.phase == .deleted)
        #expect(actions == [.supersedeAnalyticsJob(generation: 1), .schedulePoll(.afterGone)])
    }

    @Test func goneWhileRetrievingSupersedesTheJob() {
        let (machine, actions) = F.machine(after: [F.verified(1), .snapshot(.gone), .snapshot(.gone)])
        #expect(machine.phase == .deleted)
        #expect(actions == [.supersedeAnalyticsJob(generation: 1), .schedulePoll(.afterGone)])
    }

    @Test func onlyAnAuthenticatedWebhookAboutADeletedBookBringsOnePoll() {
        let unsigned = BookInput.webhook(WebhookHint(event: .bookVerified))
        let (machine, actions) = F.machine(after: [.snapshot(.gone), .snapshot(.gone), unsigned])
        #expect(machine.phase == .deleted)
        #expect(actions.isEmpty)
        // The mark may have been wrong: a delivery that proved its origin asks once more.
        let (still, polled) = F.machine(after: [.snapshot(.gone), .snapshot(.gone), F.hint(.bookVerified)])
        #expect(still.phase == .deleted)
        #expect(polled == [.pollNow(.webhookHint)])
    }

    @Test func aFinishedDocumentShownUnfinishedIsAReopenOnlyWhenASecondAnswerAgrees() {
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verified(1, 2), at: F.t0)
        // One answer showing a finished document in progress again, no new document: a doubt.
        let first = machine.apply(F.verifying(finished: [1], unfinished: [2]), at: F.t0.plus(10), confirmationGap: 60)
        #expect(first == [.warn("a finished document shows unfinished again; a second answer confirms the reopen"), .schedulePoll(.soon)])
        #expect(machine.phase == .retrieving && machine.generation == 1)
        #expect(machine.confirmedDocuments.allSatisfy { $0.status?.isFinished == true })
        // Too soon to agree; then a finished answer clears the doubt.
        #expect(machine.apply(F.verifying(finished: [1], unfinished: [2]), at: F.t0.plus(30), confirmationGap: 60) == [.schedulePoll(.soon)])
        _ = machine.apply(F.verified(1, 2), at: F.t0.plus(40), confirmationGap: 60)
        #expect(machine.doubt == nil && machine.phase == .retrieving)
        // Two answers at least the gap apart agree: the reopen is real.
        _ = machine.apply(F.verifying(finished: [1], unfinished: [2]), at: F.t0.plus(100), confirmationGap: 60)
        let reopened = machine.apply(F.verifying(finished: [1], unfinished: [2]), at: F.t0.plus(160), confirmationGap: 60)
        #expect(reopened.first == .supersedeAnalyticsJob(generation: 1))
        #expect(machine.phase == .processing && machine.generation == 2)
    }

    /// One answer listing fewer documents than the generation covered (a short page, an empty
    /// `docs`), then the full list again: the same generation, no new job (before, the returning
    /// document read as new and its analytics were fetched again as generation 2).
    @Test(arguments: [[1], []])
    func aCoveredDocumentMissingFromOneAnswerIsNoChange(shortList: [Int]) {
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verified(1, 2), at: F.t0)
        _ = machine.apply(.analytics(generation: 1, .stored), at: F.t0.plus(5))
        #expect(machine.phase == .complete)
        let short = machine.apply(F.snapshot(.verified, shortList.map { ($0, .verificationComplete) }), at: F.t0.plus(10), confirmationGap: 60)
        #expect(short == [.warn("a finished document is missing from the answer; a second answer confirms"), .schedulePoll(.soon)])
        #expect(machine.confirmedDocuments.count == 2)
        let full = machine.apply(F.verified(1, 2), at: F.t0.plus(80), confirmationGap: 60)
        #expect(full == [.schedulePoll(.retention)])
        #expect(machine.phase == .complete && machine.generation == 1 && machine.doubt == nil)
    }

    /// Two answers at least the gap apart without it: the document is gone from the listing, and
    /// the Book keeps its generation (nothing new to retrieve).
    @Test func aCoveredDocumentMissingFromTwoAnswersAGapApartIsDropped() {
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verified(1, 2), at: F.t0)
        _ = machine.apply(.analytics(generation: 1, .stored), at: F.t0.plus(5))
        _ = machine.apply(F.verified(1), at: F.t0.plus(10), confirmationGap: 60)
        #expect(machine.apply(F.verified(1), at: F.t0.plus(30), confirmationGap: 60) == [.schedulePoll(.soon)])  // too soon
        #expect(machine.apply(F.verified(1), at: F.t0.plus(70), confirmationGap: 60) == [.schedulePoll(.retention)])
        #expect(machine.confirmedDocuments.count == 1)
        #expect(machine.phase == .complete && machine.generation == 1)
    }

    @Test func aNewDocumentReopensAtOnce() {
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verified(1), at: F.t0)
        let actions = machine.apply(F.verifying(finished: [1], unfinished: [2]), at: F.t0.plus(10), confirmationGap: 60)
        #expect(actions == [.supersedeAnalyticsJob(generation: 1), .schedulePoll(.active)])
        #expect(machine.phase == .processing && machine.generation == 2)
    }

    @Test func anAnswerAskedBeforeTheGenerationFinishedIsStale() {
        // A poll in flight while a trusted body finished the Book: its older answer is no reopen.
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verifying(finished: [], unfinished: [1]), at: F.t0)
        let body = BookInput.webhook(
            WebhookHint(
                event: .bookVerified,
                listedDocuments: [DocumentSnapshot(ref: F.doc(1), status: .verificationComplete)],
                authenticated: true
            )
        )
        _ = machine.apply(body, at: F.t0.plus(10), trustingWebhooks: true)
        #expect(machine.phase == .retrieving)
        let late = machine.apply(F.verifying(finished: [], unfinished: [1]), at: F.t0.plus(12), answeredAsOf: F.t0.plus(9))
        #expect(late == [.warn("dropped a status answer asked before the generation finished"), .schedulePoll(.soon)])
        #expect(machine.phase == .retrieving && machine.generation == 1 && machine.doubt == nil)
    }

    /// Tracked again, a deleted Book is looked at now and revived by what the answer shows: a
    /// generation not retrieved starts afresh; a complete one with the same documents stays
    /// complete (tracking it used to open a new generation and fetch its analytics again).
    @Test func trackingADeletedBookAgainLooksAndTheAnswerDecidesTheGeneration() {
        let (tracked, pollNow) = F.machine(after: [F.verified(1), .snapshot(.gone), .snapshot(.gone), .command(.track(.operator))])
        #expect(tracked.phase == .deleted && tracked.doubt == nil)
        #expect(pollNow == [.pollNow(.operator)])
        let (machine, actions) = F.machine(after: [
            F.verified(1), .snapshot(.gone), .snapshot(.gone), .command(.track(.operator)), F.verified(1),
        ])
        #expect(machine.phase == .retrieving)
        #expect(machine.generation == 2)
        #expect(actions.contains(.openAnalyticsJob(generation: 2)))
        let (complete, _) = F.machine(after: [
            F.verified(1), .analytics(generation: 1, .stored), .snapshot(.gone), .snapshot(.gone), .command(.track(.operator)), F.verified(1),
        ])
        #expect(complete.phase == .complete && complete.generation == 1)
        // A gone answer after the track dates the slow polls afresh (not from the old deletion).
        var again = tracked
        _ = again.apply(.snapshot(.gone), at: F.t0.plus(100), confirmationGap: 60)
        #expect(again.doubt == Doubt(kind: .gone, since: F.t0.plus(100)))
    }

    @Test func aPresentSnapshotAfterDeletionRevivesTheBook() {
        let (machine, actions) = F.machine(after: [F.verified(1), .snapshot(.gone), .snapshot(.gone), F.verifying(finished: [], unfinished: [1])])
        #expect(machine.phase == .processing)
        #expect(machine.generation == 2)
        #expect(actions.contains(.schedulePoll(.active)))
        // The job the deletion superseded (retrieving) goes with what it stored.
        #expect(actions.contains(.supersedeAnalyticsJob(generation: 1)))
        // A complete generation's results are its own: a revival with other documents keeps them.
        let (revived, afterComplete) = F.machine(after: [
            F.verified(1), .analytics(generation: 1, .stored), .snapshot(.gone), .snapshot(.gone), F.verified(1, 2),
        ])
        #expect(revived.phase == .retrieving && revived.generation == 2)
        #expect(!afterComplete.contains { if case .supersedeAnalyticsJob = $0 { true } else { false } })
    }

    // MARK: analytics outcomes

    @Test func storedCompletesAndNotifies() {
        let (machine, actions) = F.machine(after: [F.verified(1), .analytics(generation: 1, .stored)])
        #expect(machine.phase == .complete)
        #expect(actions == [.completeAnalyticsJob(generation: 1), .notifyRetrieved(generation: 1), .schedulePoll(.retention)])
    }

    /// While analytics are not ready the Book is polled as if active: a 425 after VERIFIED can be
    /// a reopen, and a late 200 would then be the next generation's analytics.
    @Test func notReadyAndTransientErrorsRetryWithoutFailingAndKeepPolling() {
        let (m1, a1) = F.machine(after: [F.verified(1), .analytics(generation: 1, .notReady)])
        #expect(m1.phase == .retrieving)
        #expect(a1 == [.retryAnalyticsJob(generation: 1, notReady: true), .pollWithin(.active)])
        let (m2, a2) = F.machine(after: [F.verified(1), .analytics(generation: 1, .transientError("503"))])
        #expect(m2.phase == .retrieving)
        #expect(a2 == [.retryAnalyticsJob(generation: 1, notReady: false), .pollWithin(.active)])
    }

    @Test func permanentErrorFailsWithTheReason() {
        let (machine, actions) = F.machine(after: [F.verified(1), .analytics(generation: 1, .permanentError("403 code 2102"))])
        #expect(machine.phase == .failed)
        #expect(machine.failureReason == "403 code 2102")
        #expect(actions == [.failAnalyticsJob(generation: 1, reason: "403 code 2102"), .schedulePoll(.retention)])
    }

    @Test func staleAnalyticsOutcomeIsIgnored() {
        let (machine, actions) = F.machine(after: [
            F.verified(1), F.verifying(finished: [1], unfinished: [2]), .analytics(generation: 1, .stored),
        ])
        #expect(machine.phase == .processing)
        #expect(machine.generation == 2)
        #expect(actions.count == 1)
        #expect(actions.allSatisfy { if case .warn = $0 { true } else { false } })
    }

    // MARK: webhook hints

    @Test func bookLevelEventPollsAtOnceWhileTrackingOrProcessing() {
        #expect(F.machine(after: [F.hint(.bookVerified)]).1 == [.pollNow(.webhookHint)])
        #expect(F.machine(after: [F.verifying(finished: [], unfinished: [1]), F.hint(.bookCompleted)]).1 == [.pollNow(.webhookHint)])
        let thinBookBody = BookInput.webhook(WebhookHint(event: .bookVerified, bookStatus: .verified))
        #expect(F.machine(after: [thinBookBody]).1 == [.pollNow(.webhookHint)])
    }

    @Test func documentEventPollsOnlyWhenItCouldBeTheLastUnfinished() {
        let start = F.verifying(finished: [], unfinished: [1, 2])
        let (m1, a1) = F.machine(after: [start, F.hint(.documentVerified, doc: 1)])
        #expect(a1 == [.postponePoll(.active)])  // alive and not finished: the safety-net poll moves out
        #expect(m1.phase == .processing)
        let (_, a2) = F.machine(after: [start, F.hint(.documentVerified, doc: 1), F.hint(.documentStatus, doc: 2, status: .rejected)])
        #expect(a2 == [.pollNow(.webhookHint)])
    }

    @Test func hintsNeverChangeTheTruth() {
        let start = F.verifying(finished: [], unfinished: [1])
        let (machine, _) = F.machine(after: [start, F.hint(.documentVerified, doc: 1), F.hint(.bookVerified)])
        #expect(machine.phase == .processing)
        #expect(machine.lastOpenedGeneration == 0)
        #expect(machine.truth == F.machine(after: [start]).0.truth)
        #expect(machine.lastWebhookAt != nil)
    }

    @Test func snapshotContradictingAnEarlierWebhookWins() {
        // The webhook said document 1 finished; a snapshot long after says it is still processing.
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verifying(finished: [], unfinished: [1]), at: F.t0)
        _ = machine.apply(F.hint(.documentVerified, doc: 1), at: F.t0.addingTimeInterval(1))
        let actions = machine.apply(F.verifying(finished: [], unfinished: [1]), at: F.t0.addingTimeInterval(1 + BookMachine.statusLag + 1))
        #expect(machine.phase == .processing)
        #expect(machine.documents.allSatisfy { $0.hint == nil })
        #expect(machine.documents.first?.effectiveProgress == .inProgress)
        #expect(actions == [.schedulePoll(.active)])
    }

    @Test func aSnapshotLaggingBehindAFreshWebhookKeepsItsHintAndAsksAgainSoon() {
        // The status endpoint has not caught up with the event of a moment ago.
        let (machine, actions) = F.machine(after: [
            F.verifying(finished: [], unfinished: [1]), F.hint(.documentVerified, doc: 1),
            F.verifying(finished: [], unfinished: [1]),
        ])
        #expect(machine.phase == .processing)
        #expect(machine.documents.first?.status == .processing, "the truth is the snapshot's")
        #expect(machine.documents.first?.hint == .succeeded)
        #expect(actions == [.schedulePoll(.active), .pollWithin(.soon)])
        // When the status catches up, the announcement counts for the loss estimate.
        var next = machine
        let caughtUp = next.apply(F.verified(1), at: F.t0.addingTimeInterval(90))
        #expect(caughtUp.first == .webhookCoverage(announced: 1, missed: 0))
        #expect(next.phase == .retrieving)
    }

    @Test func anAnswerAskedBeforeAWebhookArrivedKeepsItsHintHoweverLateItCommits() {
        // The question left at t+10; the document's event arrived at t+11; the answer (taken when
        // the question arrived, so still unfinished) commits after the status lag has passed.
        var machine = BookMachine(uuid: F.uuid)
        _ = machine.apply(F.verifying(finished: [], unfinished: [1]), at: F.t0)
        _ = machine.apply(F.hint(.documentVerified, doc: 1), at: F.t0.plus(11))
        let late = machine.apply(
            F.verifying(finished: [], unfinished: [1]),
            at: F.t0.plus(20 + BookMachine.statusLag),
            answeredAsOf: F.t0.plus(10)
        )
        #expect(machine.documents.first?.hint == .succeeded, "the answer could not know of the event")
        #expect(late.contains(.pollWithin(.soon)))
        // The next answer shows the finish: it was announced, not missed.
        #expect(machine.apply(F.verified(1), at: F.t0.plus(30 + BookMachine.statusLag)).first == .webhookCoverage(announced: 1, missed: 0))
        // An answer asked after the event, as late, still wins over the hint.
        var asked = BookMachine(uuid: F.uuid)
        _ = asked.apply(F.verifying(finished: [], unfinished: [1]), at: F.t0)
        _ = asked.apply(F.hint(.documentVerified, doc: 1), at: F.t0.plus(11))
        _ = asked.apply(
            F.verifying(finished: [], unfinished: [1]),
            at: F.t0.plus(20 + BookMachine.statusLag),
            answeredAsOf: F.t0.plus(12)
        )
        #expect(asked.documents.first?.hint == nil)
    }

    @Test func webhookForAnUnseenDocumentAfterCompletePollsForAReopen() {
        let (machine, actions) = F.machine(after: [F.verified(1), .analytics(generation: 1, .stored), F.hint(.documentUploaded, doc: 9)])
        #expect(actions == [.pollNow(.webhookHint)])
        #expect(machine.phase == .complete)
        #expect(machine.generation == 1)
        #expect(machine.documents.contains { $0.ref.matches(F.doc(9)) && !$0.isConfirmed })
        #expect(machine.confirmedDocuments.count == 1)
    }

    @Test func webhookForAnUnseenDocumentWhileProcessingIsRecordedAsAHint() {
        let (machine, actions) = F.machine(after: [F.verifying(finished: [1], unfinished: []), F.hint(.documentUploaded, doc: 9)])
        #expect(actions == [.postponePoll(.active)])
        #expect(machine.documents.count == 2)
        #expect(machine.confirmedDocuments.count == 1)
        // A later verification of that unseen document could be the last one.
        let (_, next) = F.machine(after: [
            F.verifying(finished: [1], unfinished: []), F.hint(.documentUploaded, doc: 9), F.hint(.documentVerified, doc: 9),
        ])
        #expect(next == [.pollNow(.webhookHint)])
    }

    @Test func webhookMatchesADocumentByPkOnly() {
        let thin = BookInput.webhook(WebhookHint(event: .documentStatus, document: DocumentRef(pk: 1001), documentStatus: .verificationComplete))
        let (machine, actions) = F.machine(after: [F.verifying(finished: [], unfinished: [1]), thin])
        #expect(actions == [.pollNow(.webhookHint)])
        #expect(machine.documents.count == 1)
    }

    @Test func analyticsReadyEventExpeditesTheWaitingJob() {
        let (_, actions) = F.machine(after: [F.verified(1), F.hint(.bookCompleted)])
        #expect(actions == [.expediteAnalyticsJob(generation: 1)])
        let (_, again) = F.machine(after: [F.verified(1), F.hint(.bookVerified)])
        #expect(again.isEmpty)
    }

    @Test func lateBookEventAfterCompleteCostsNothing() {
        let (_, actions) = F.machine(after: [F.verified(1), .analytics(generation: 1, .stored), F.hint(.bookCompleted)])
        #expect(actions.isEmpty)
    }

    @Test func bookEventListingAnUnseenDocumentAfterCompletePolls() {
        let listing = BookInput.webhook(
            WebhookHint(
                event: .bookVerified,
                listedDocuments: [
                    DocumentSnapshot(ref: DocumentRef(uuid: F.docUUID(1)), status: .verificationComplete),
                    DocumentSnapshot(ref: DocumentRef(uuid: F.docUUID(2)), status: .verificationComplete),
                ]
            )
        )
        let (_, actions) = F.machine(after: [F.verified(1), .analytics(generation: 1, .stored), listing])
        #expect(actions == [.pollNow(.webhookHint)])
    }

    @Test func trackingANewlyCreatedBookWaitsForHintsOrTheSchedule() {
        var machine = BookMachine(uuid: F.uuid)
        #expect(machine.apply(.command(.track(.created)), at: F.t0) == [.schedulePoll(.active)])
        #expect(machine.apply(.command(.track(.operator)), at: F.t0) == [.pollNow(.operator)])
    }

    @Test func unknownEventsAreHarmless() {
        let (machine, actions) = F.machine(after: [F.verifying(finished: [], unfinished: [1]), F.hint(.unknown("book.teleported"))])
        #expect(actions == [.postponePoll(.active)])  // nothing more than "the Book is alive"
        #expect(machine.phase == .processing)
    }
}
