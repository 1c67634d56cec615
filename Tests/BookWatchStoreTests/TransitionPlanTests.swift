import BookWatchCore
import BookWatchStore
import Foundation
import Testing

/// `TransitionPlan.decide` directly, as tables: the rows a transition writes, decided without a
/// database (both stores carry the same plan out, so these hold for either).
@Suite struct TransitionPlanTests {
    static let uuid = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!
    static let t0 = Date(timeIntervalSince1970: 1_774_000_000)
    static let schedule = PollSchedule(minimum: 60, maximum: 1800, retention: 168 * 3600)
    static let claim = JobClaim(owner: "worker-a", token: 7)

    static func doc(_ n: Int) -> DocumentRef { DocumentRef(pk: 1000 + n, uuid: "00000000-0000-4000-8000-00000000000\(n)") }

    static func snapshot(_ status: BookStatus, _ docs: [(Int, DocumentStatus)]) -> BookInput {
        .snapshot(.present(pk: 42, status: status, documents: docs.map { DocumentSnapshot(ref: doc($0.0), status: $0.1) }))
    }

    static let processing = snapshot(.verifying, [(1, .processing)])

    /// `input` (a snapshot) as the answer asked at `takenAt` by the poll claimed at `claim`.
    static func answered(_ input: BookInput, takenAt: Date, claim: Date?) -> BookInput {
        guard case .snapshot(let snapshot, _) = input else { return input }
        return .snapshot(snapshot, PollAnswer(takenAt: takenAt, claim: claim))
    }
    static let verified = snapshot(.verified, [(1, .verificationComplete)])

    /// A machine that went through `inputs` (one second apart, confirming doubts at once).
    static func machine(after inputs: [BookInput]) -> BookMachine {
        var machine = BookMachine.fresh(uuid: uuid, afterGeneration: 0)
        for (i, input) in inputs.enumerated() {
            _ = machine.apply(input, at: t0.addingTimeInterval(Double(i)), confirmationGap: 1)
        }
        return machine
    }

    static func decide(
        _ input: BookInput,
        after inputs: [BookInput],
        stored: StoredSchedule = .none,
        options: TransitionOptions = .init(),
        resuming: Bool = false,
        created: Bool = false
    ) -> (BookMachine, [BookAction], TransitionPlan) {
        var machine = machine(after: inputs)
        let (actions, plan) = TransitionPlan.decide(
            input,
            machine: &machine,
            stored: stored,
            options: options,
            now: t0.addingTimeInterval(100),
            draw: 0.5,
            schedule: schedule,
            resuming: resuming,
            created: created
        )
        return (machine, actions, plan)
    }

    static var now: Int64 { t0.addingTimeInterval(100).storageMillis }

    struct JobRow: CustomTestStringConvertible, Sendable {
        var name: String
        var before: [BookInput]
        var input: BookInput
        var jobs: [JobChange]
        var notify: [Int]
        var testDescription: String { name }
    }

    static let retryAt = JobReport(claim: claim, retryAt: t0.addingTimeInterval(400))
    static let claimed = JobReport(claim: claim)
    static let notReadyAwaitingView = JobReport(claim: claim, retryAt: t0.addingTimeInterval(400), awaitingView: true)

    static let jobRows: [JobRow] = [
        JobRow(name: "a finish opens the generation's job", before: [processing], input: verified, jobs: [.open], notify: []),
        JobRow(
            name: "stored analytics complete the job and notify",
            before: [processing, verified],
            input: .analytics(generation: 1, .stored, claimed),
            jobs: [.finish(.complete)],
            notify: [1]
        ),
        JobRow(
            name: "a transient error retries at the worker's time and counts",
            before: [processing, verified],
            input: .analytics(generation: 1, .transientError("503"), retryAt),
            jobs: [.retry(dueAt: t0.addingTimeInterval(400).storageMillis, countsError: true, awaitingView: false, error: "503")],
            notify: []
        ),
        JobRow(
            name: "not ready retries without counting, waiting for a view when asked",
            before: [processing, verified],
            input: .analytics(generation: 1, .notReady, notReadyAwaitingView),
            jobs: [.retry(dueAt: t0.addingTimeInterval(400).storageMillis, countsError: false, awaitingView: true)],
            notify: []
        ),
        JobRow(
            name: "a permanent error fails the job with its reason",
            before: [processing, verified],
            input: .analytics(generation: 1, .permanentError("gone for good"), claimed),
            jobs: [.fail(reason: "gone for good")],
            notify: []
        ),
        JobRow(
            name: "retry re-arms a failed job",
            before: [processing, verified, .analytics(generation: 1, .permanentError("x"))],
            input: .command(.retry),
            jobs: [.rearm],
            notify: []
        ),
        JobRow(
            name: "a reopen while retrieving supersedes the job and opens none yet",
            before: [processing, verified],
            input: snapshot(.verifying, [(1, .verificationComplete), (2, .processing)]),
            jobs: [.finish(.superseded)],
            notify: []
        ),
        JobRow(
            name: "an outcome for another generation writes no job row",
            before: [processing, verified],
            input: .analytics(generation: 9, .stored),
            jobs: [],
            notify: []
        ),
    ]

    @Test(arguments: jobRows)
    func jobRowsAndNotifications(_ row: JobRow) {
        let (_, _, plan) = Self.decide(row.input, after: row.before)
        #expect(plan.jobs.map(\.change) == row.jobs)
        #expect(plan.notify == row.notify)
        #expect(!plan.untrack)
    }

    @Test func anAnalyticsOutcomeCarriesItsClaimAsTheFenceAndOtherInputsNone() {
        let (_, _, outcome) = Self.decide(.analytics(generation: 1, .stored, Self.claimed), after: [Self.processing, Self.verified])
        #expect(outcome.fence?.generation == 1)
        #expect(outcome.fence?.claim == Self.claim)
        let (_, _, snapshot) = Self.decide(Self.verified, after: [Self.processing])
        #expect(snapshot.fence == nil)
    }

    @Test func untrackKeepsOnlySupersessionsAndDropsTheScheduleButNotTheSnapshotTime() {
        let stored = StoredSchedule(next: 5, reason: "operator", claimedAt: 4, snapshotAsOf: 3, failures: 2)
        let (_, _, plan) = Self.decide(.command(.untrack), after: [Self.processing, Self.verified], stored: stored)
        #expect(plan.untrack)
        #expect(plan.jobs.isEmpty)
        #expect(plan.notify.isEmpty)
        #expect(plan.schedule == StoredSchedule(snapshotAsOf: 3))
    }

    @Test func anOlderSnapshotIsDroppedEndingOnlyItsOwnClaim() {
        let claimAt = Self.t0.addingTimeInterval(50)
        let stored = StoredSchedule(
            next: 9,
            reason: nil,
            claimedAt: claimAt.storageMillis,
            snapshotAsOf: Self.t0.addingTimeInterval(90).storageMillis
        )
        let older = Self.answered(Self.verified, takenAt: Self.t0.addingTimeInterval(80), claim: claimAt)
        let (machine, actions, plan) = Self.decide(older, after: [Self.processing], stored: stored)
        #expect(actions.isEmpty)
        #expect(plan.jobs.isEmpty)
        #expect(machine.phase == .processing)
        var expected = stored
        expected.claimedAt = nil
        #expect(plan.schedule == expected)

        let otherClaim = Self.answered(Self.verified, takenAt: Self.t0.addingTimeInterval(80), claim: Self.t0)
        let (_, _, kept) = Self.decide(otherClaim, after: [Self.processing], stored: stored)
        #expect(kept.schedule == stored)
    }

    @Test func aNewerSnapshotAdvancesTheSnapshotTimeEndsItsClaimAndResetsFailures() {
        let claimAt = Self.t0.addingTimeInterval(50)
        let stored = StoredSchedule(next: 9, reason: nil, claimedAt: claimAt.storageMillis, snapshotAsOf: Self.t0.storageMillis, failures: 3)
        let answer = Self.answered(Self.processing, takenAt: Self.t0.addingTimeInterval(95), claim: claimAt)
        let (_, _, plan) = Self.decide(answer, after: [Self.processing], stored: stored)
        #expect(plan.schedule.snapshotAsOf == Self.t0.addingTimeInterval(95).storageMillis)
        #expect(plan.schedule.claimedAt == nil)
        #expect(plan.schedule.failures == 0)
        #expect(plan.schedule.next != nil)
    }

    @Test func aRefusalResetsFailuresAnAnswerOfAnotherKindKeepsThem() {
        let stored = StoredSchedule(next: 9, failures: 3)
        let (_, _, refused) = Self.decide(.pollRefused("403 2102"), after: [Self.processing], stored: stored)
        #expect(refused.schedule.failures == 0)
        let (_, _, hinted) = Self.decide(
            .webhook(WebhookHint(event: .documentVerified, document: Self.doc(1), authenticated: true)),
            after: [Self.processing],
            stored: stored
        )
        #expect(hinted.schedule.failures == 3)
    }

    @Test func anUrgentPollRequestedAfterTheClaimStaysDue() {
        let claimAt = Self.t0.addingTimeInterval(50)
        // The stored claim is a later one than the answer's: a request came after this poll began.
        let stored = StoredSchedule(next: Self.t0.addingTimeInterval(60).storageMillis, reason: "webhook_hint", claimedAt: claimAt.storageMillis + 1)
        let answer = Self.answered(Self.processing, takenAt: Self.t0.addingTimeInterval(95), claim: claimAt)
        let (_, _, plan) = Self.decide(answer, after: [Self.processing], stored: stored)
        #expect(plan.schedule.reason == "webhook_hint")
        #expect(plan.schedule.next == Self.t0.addingTimeInterval(60).storageMillis)
    }

    @Test func autoTrackingTracksThenAppliesTheHintInOnePlan() {
        let hint = BookInput.webhook(
            WebhookHint(event: .bookVerified, bookStatus: .verified, authenticated: true),
            HintDelivery(trackUnknown: true)
        )
        let (machine, actions, plan) = Self.decide(hint, after: [], created: true)
        var tracked = Self.machine(after: [])
        let trackActions = tracked.apply(.command(.track(.webhook)), at: Self.t0.addingTimeInterval(100), confirmationGap: 60)
        #expect(Array(actions.prefix(trackActions.count)) == trackActions)
        #expect(actions.count > trackActions.count)
        #expect(machine.phase == .tracking)
        #expect(plan.schedule.next != nil)
        #expect(!plan.untrack)
    }

    @Test func resumingATombstoneWhileRetrievingMakesTheJobWaitForTheTracksAnswer() {
        let (_, _, plan) = Self.decide(.command(.track(.operator)), after: [Self.processing, Self.verified], resuming: true)
        let fallback = Self.t0.addingTimeInterval(100 + Self.schedule.confirmFreshness).storageMillis
        #expect(plan.jobs.map(\.change) == [.resume(dueAt: fallback, untrackedFor: 0)])
        let (_, _, notResuming) = Self.decide(.command(.track(.operator)), after: [Self.processing, Self.verified])
        #expect(notResuming.jobs.isEmpty)
    }

    @Test(arguments: [
        (BookInput.command(.track(.operator)), true),
        (BookInput.command(.track(.created)), true),
        (BookInput.webhook(WebhookHint(event: .bookVerified)), false),
        (BookInput.webhook(WebhookHint(event: .bookVerified), HintDelivery(trackUnknown: true)), true),
        (BookInput.command(.untrack), false),
        (BookInput.analytics(generation: 1, .stored), false),
    ])
    func whatMayCreateABook(_ input: BookInput, creates: Bool) {
        #expect(TransitionPlan.mayCreate(input) == creates)
    }

    @Test func onlyTheOperatorsTrackReachesATombstone() {
        #expect(TransitionPlan.resuming(.command(.track(.operator))) == .command(.track(.operator)))
        #expect(TransitionPlan.resuming(.command(.track(.created))) == .command(.track(.operator)))
        #expect(TransitionPlan.resuming(.command(.track(.webhook))) == nil)
        #expect(TransitionPlan.resuming(.webhook(WebhookHint(event: .bookVerified))) == nil)
        #expect(TransitionPlan.resuming(Self.verified) == nil)
    }
}
