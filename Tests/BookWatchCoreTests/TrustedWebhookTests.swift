import BookWatchCore
import Foundation
import Testing

/// What changes when the watcher trusts webhooks (measured reliable, `BOOKWATCH_WEBHOOK_TRUST`
/// `measured`): a finished book-level body finishes the Book without a status call.
@Suite struct TrustedWebhookTests {
    typealias F = Fixture

    static func body(
        _ docs: [(Int, DocumentStatus)],
        event: WebhookEvent = .bookVerified,
        bookStatus: BookStatus? = nil,
        authenticated: Bool = true
    ) -> BookInput {
        .webhook(
            WebhookHint(
                event: event,
                bookStatus: bookStatus,
                listedDocuments: docs.map { DocumentSnapshot(ref: DocumentRef(uuid: F.docUUID($0.0)), status: $0.1) },
                authenticated: authenticated
            )
        )
    }

    /// A Book tracked at creation whose two documents were announced uploaded and verified.
    static let announced: [BookInput] = [
        .command(.track(.created)),
        F.hint(.documentUploaded, doc: 1), F.hint(.documentUploaded, doc: 2),
        F.hint(.documentVerified, doc: 1), F.hint(.documentVerified, doc: 2),
    ]

    static func run(_ inputs: [BookInput], trusted: Bool) -> (BookMachine, [BookAction]) {
        var machine = BookMachine(uuid: F.uuid)
        var last: [BookAction] = []
        for (i, input) in inputs.enumerated() {
            last = machine.apply(input, at: F.t0.addingTimeInterval(Double(i)), trustingWebhooks: trusted)
        }
        return (machine, last)
    }

    @Test func aBodyKeepsThePkAHintTaughtSoLaterHintsStillMatch() {
        // Legacy-style hints name documents by pk; bodies list uuids. After the finish, a pk-only
        // hint about a known document must not look like a new upload (which asks for a poll).
        let inputs: [BookInput] = [
            .command(.track(.created)),
            .webhook(WebhookHint(event: .documentVerified, document: F.doc(1))),
            Self.body([(1, .verificationComplete)]),
            .webhook(WebhookHint(event: .documentSignalFound, document: DocumentRef(pk: F.doc(1).pk))),
        ]
        let (machine, actions) = Self.run(inputs, trusted: true)
        #expect(actions == [])
        #expect(machine.documents.map(\.ref) == [F.doc(1)])
    }

    @Test func aTrustedFinishedBodyFinishesTheBookWithoutAStatusCall() {
        let (machine, actions) = Self.run(Self.announced + [Self.body([(1, .verificationComplete), (2, .rejected)])], trusted: true)
        // No `.webhookCoverage`: a body is no evidence about documents (see `finish(fromBody:)`);
        // it is the announcement of the Book's finish.
        #expect(actions == [.bookFinishCoverage(announced: true), .openAnalyticsJob(generation: 1), .schedulePoll(.retention)])
        #expect(machine.phase == .retrieving)
        #expect(machine.bookStatus == .verified)
        #expect(machine.documents.map(\.status) == [.verificationComplete, .rejected])
        #expect(machine.lastSnapshotAt == nil, "no status was read")
        #expect(machine.finishedAt == F.t0.addingTimeInterval(5))
    }

    @Test func anUnauthenticatedBodyNeverStandsInForAStatusCall() {
        // No secret, no Basic credentials, no allowlist: any POST could have sent it.
        let (machine, actions) = Self.run(
            Self.announced + [Self.body([(1, .verificationComplete), (2, .rejected)], authenticated: false)],
            trusted: true
        )
        #expect(actions == [.pollNow(.webhookHint)])
        #expect(machine.phase == .tracking)
    }

    @Test func aBodyListingADocumentNeverSeenBeforeAsksForAPoll() {
        // Document 2 was never announced nor seen in a status answer.
        let inputs: [BookInput] = [
            .command(.track(.created)), F.hint(.documentUploaded, doc: 1), F.hint(.documentVerified, doc: 1),
            Self.body([(1, .verificationComplete), (2, .verificationComplete)]),
        ]
        let (machine, actions) = Self.run(inputs, trusted: true)
        #expect(actions == [.pollNow(.webhookHint)])
        #expect(machine.phase == .tracking)
        // A document that only an earlier body's list named was never announced either.
        let (listed, second) = Self.run(
            [
                .command(.track(.created)), Self.body([(1, .verificationComplete)]), Self.body([(1, .verificationComplete)]),
            ],
            trusted: true
        )
        #expect(second == [.pollNow(.webhookHint)])
        #expect(listed.phase == .tracking)
        // Nothing known at all: an empty known set is not "every known document finished".
        let (empty, first) = Self.run([.command(.track(.created)), Self.body([(1, .verificationComplete)])], trusted: true)
        #expect(first == [.pollNow(.webhookHint)])
        #expect(empty.phase == .tracking)
    }

    @Test func untrustedTheSameBodyIsAHintThatAsksForAPoll() {
        let (machine, actions) = Self.run(Self.announced + [Self.body([(1, .verificationComplete), (2, .rejected)])], trusted: false)
        #expect(actions == [.pollNow(.webhookHint)])
        #expect(machine.phase == .tracking)
        #expect(machine.lastOpenedGeneration == 0)
    }

    @Test func aBodyMissingAKnownDocumentIsOlderThanWhatWasSeenAndOnlyAsksForAPoll() {
        // A third document was announced after the body was sent (a late delivery across a reopen).
        let inputs = Self.announced + [F.hint(.documentUploaded, doc: 3), Self.body([(1, .verificationComplete), (2, .verificationComplete)])]
        let (machine, actions) = Self.run(inputs, trusted: true)
        #expect(actions == [.pollNow(.webhookHint)])
        #expect(machine.phase == .tracking)
    }

    @Test func aKnownDeletedDocumentNeedNotBeListed() {
        let inputs: [BookInput] = [
            .command(.track(.operator)),
            F.snapshot(.verifying, [(1, .processing), (2, .deleted)]),
            F.hint(.documentVerified, doc: 1),
            Self.body([(1, .verificationComplete)]),
        ]
        let (machine, actions) = Self.run(inputs, trusted: true)
        #expect(actions.contains(.openAnalyticsJob(generation: 1)))
        #expect(machine.phase == .retrieving)
    }

    @Test(arguments: [
        TrustedWebhookTests.body([(1, .verificationComplete), (2, .processing)]),  // a document still in progress
        TrustedWebhookTests.body([(1, .verificationComplete), (2, .verificationComplete)], bookStatus: .verifying),
        TrustedWebhookTests.body([(1, .verificationComplete), (2, .verificationComplete)], event: .bookAnalyticsGenerated),
        BookInput.webhook(WebhookHint(event: .bookVerified, bookStatus: .verified)),  // BOOK_VERIFIED: no list
    ])
    func bodiesThatDoNotShowEveryDocumentFinishedAskForAPoll(_ body: BookInput) {
        let (machine, actions) = Self.run(Self.announced + [body], trusted: true)
        #expect(actions == [.pollNow(.webhookHint)])
        #expect(machine.phase == .tracking)
    }

    @Test func aBodyNeverReopensOrFinishesAgainAFinishedBook() {
        let finished = Self.announced + [Self.body([(1, .verificationComplete), (2, .verificationComplete)])]
        // A second copy while retrieving, and after completion: nothing new.
        #expect(Self.run(finished + [Self.body([(1, .verificationComplete), (2, .verificationComplete)])], trusted: true).1 == [])
        let complete = finished + [.analytics(generation: 1, .stored)]
        #expect(Self.run(complete + [Self.body([(1, .verificationComplete), (2, .verificationComplete)])], trusted: true).1 == [])
        // A body naming a new document after completion is a possible reopen: a status call decides.
        let (machine, actions) = Self.run(
            complete + [Self.body([(1, .verificationComplete), (2, .verificationComplete), (3, .verificationComplete)])],
            trusted: true
        )
        #expect(actions == [.pollNow(.webhookHint)])
        #expect(machine.phase == .complete)
        #expect(machine.lastOpenedGeneration == 1)
    }

    @Test func aDocumentEventThatMayBeTheLastAsksForAPollSoonInsteadOfAtOnce() {
        // Tracking (never polled): the Book's own finished event usually follows within seconds.
        #expect(Self.run(Self.announced, trusted: true).1 == [.pollWithin(.soon)])
        #expect(Self.run(Self.announced, trusted: false).1 == [.postponePoll(.active)])
        // Processing (polled once): untrusted it polls at once, as before.
        let processing: [BookInput] = [
            .command(.track(.operator)), F.verifying(finished: [1], unfinished: [2]), F.hint(.documentVerified, doc: 2),
        ]
        #expect(Self.run(processing, trusted: true).1 == [.pollWithin(.soon)])
        #expect(Self.run(processing, trusted: false).1 == [.pollNow(.webhookHint)])
        // Not the last: pushed out as usual.
        let notLast = Array(Self.announced.dropLast())
        #expect(Self.run(notLast, trusted: true).1 == [.postponePoll(.active)])
    }

    @Test func aBookWatchedSinceCreationCountsItsFirstSnapshotForTheLossEstimate() {
        // Document 1 was announced verified, document 2's events were all lost.
        let history: [BookInput] = [F.hint(.documentVerified, doc: 1), F.verified(1, 2)]
        let created = Self.run([.command(.track(.created))] + history, trusted: false)
        #expect(created.0.watchedSinceCreation)
        #expect(created.1.first == .webhookCoverage(announced: 1, missed: 1))
        // Tracked later (auto-track, or `track` of an existing Book): documents may predate it.
        let later = Self.run([.command(.track(.webhook))] + history, trusted: false)
        #expect(!later.0.watchedSinceCreation)
        #expect(!later.1.contains { if case .webhookCoverage = $0 { true } else { false } })
        // "New" after a poll has seen it is not new.
        let polledFirst = Self.run(
            [.command(.track(.operator)), F.verifying(finished: [], unfinished: [1]), .command(.track(.created))],
            trusted: false
        )
        #expect(!polledFirst.0.watchedSinceCreation)
    }

    @Test func aBookEventsListNamesDocumentsButAnnouncesNone() {
        // Document 2's own verification event was lost; book.verified lists it finished. Untrusted,
        // the poll the body asks for counts document 2 as missed (the list is not its announcement).
        let inputs: [BookInput] = [
            .command(.track(.operator)), F.verifying(finished: [], unfinished: [1, 2]),
            F.hint(.documentVerified, doc: 1),
            Self.body([(1, .verificationComplete), (2, .verificationComplete)]),
        ]
        let (machine, actions) = Self.run(inputs, trusted: false)
        #expect(actions == [.pollNow(.webhookHint)])
        #expect(machine.documents.map(\.hint) == [.succeeded, nil])
        var polled = machine
        #expect(polled.apply(F.verified(1, 2), at: F.t0.addingTimeInterval(10)).first == .webhookCoverage(announced: 1, missed: 1))
    }

    @Test func finishedBodyIsOnlyRecognisedOnBookFinishedEvents() {
        let listed = [DocumentSnapshot(ref: DocumentRef(uuid: F.docUUID(1)), status: .completed)]
        #expect(WebhookHint(event: .bookVerified, listedDocuments: listed).finishedBody == listed)
        #expect(WebhookHint(event: .bookCompleted, bookStatus: .verified, listedDocuments: listed).finishedBody == listed)
        #expect(WebhookHint(event: .bookClassified, listedDocuments: listed).finishedBody == nil)
        #expect(WebhookHint(event: .bookVerified).finishedBody == nil)
        #expect(WebhookHint(event: .bookVerified, listedDocuments: [DocumentSnapshot(ref: DocumentRef(), status: .completed)]).finishedBody == nil)
    }
}
