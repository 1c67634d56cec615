import BookWatchCore
import Testing

@Suite struct StatusTests {
    @Test(arguments: [
        ("UPLOADED", DocumentProgress.inProgress), ("QUEUED", .inProgress), ("PROCESSING", .inProgress),
        ("GROOMING", .inProgress), ("VERIFYING", .inProgress), ("CLASSIFIED", .inProgress),
        ("DELETING", .inProgress), ("VERIFICATION_COMPLETE", .succeeded), ("COMPLETED", .succeeded),
        ("REJECTED", .failed), ("FAILED", .failed), ("DELETED", .removed),
    ])
    func documentStatusTableOfTheAPIDoc(raw: String, progress: DocumentProgress) {
        let status = DocumentStatus(raw)
        #expect(status.progress == progress)
        #expect(status.rawValue == raw)
        #expect(!status.isUnknown)
    }

    @Test func unknownDocumentStatusIsKeptAndInProgress() {
        let status = DocumentStatus("QUANTUM_ENTANGLED")
        #expect(status == .unknown("QUANTUM_ENTANGLED"))
        #expect(status.rawValue == "QUANTUM_ENTANGLED")
        #expect(!status.isFinished)
        #expect(status.isUnknown)
    }

    @Test func bookCompleteIsTheOldNameOfVerified() {
        #expect(BookStatus("BOOK_COMPLETE") == .verified)
        #expect(BookStatus("VERIFIED") == .verified)
        #expect(BookStatus("SOMETHING_NEW") == .unknown("SOMETHING_NEW"))
        #expect(BookStatus("SOMETHING_NEW").rawValue == "SOMETHING_NEW")
    }

    @Test func finishedRule() {
        let done = DocumentSnapshot(ref: Fixture.doc(1), status: .verificationComplete)
        let rejected = DocumentSnapshot(ref: Fixture.doc(2), status: .rejected)
        let busy = DocumentSnapshot(ref: Fixture.doc(3), status: .verifying)
        #expect(BookSnapshot.present(pk: 1, status: .verified, documents: [done, rejected]).isFinished)
        // Inconsistent snapshot: VERIFIED while a document is still VERIFYING is not finished.
        #expect(!BookSnapshot.present(pk: 1, status: .verified, documents: [done, busy]).isFinished)
        // All documents finished but the Book still says VERIFYING: not finished yet.
        #expect(!BookSnapshot.present(pk: 1, status: .verifying, documents: [done]).isFinished)
        #expect(!BookSnapshot.gone.isFinished)
        #expect(BookSnapshot.present(pk: 1, status: .deleted, documents: []).normalised == .gone)
    }

    @Test func uuidParsingNormalisesAndRejects() throws {
        let parsed = try BookUUID(parsing: "09C52985-2F05-4022-A738-9277CC335C7E")
        #expect(parsed.rawValue == "09c52985-2f05-4022-a738-9277cc335c7e")
        for bad in [
            "", "not-a-uuid", "09c52985-2f05-4022-a738-9277cc335c7", "09c52985x2f05-4022-a738-9277cc335c7e",
            "g9c52985-2f05-4022-a738-9277cc335c7e", "09c52985-2f05-4022-a738-9277cc335c7e0",
        ] {
            #expect(throws: MalformedUUID(input: bad)) { try BookUUID(parsing: bad) }
        }
    }

    @Test func documentRefsMatchOnEitherIdentifier() {
        let full = DocumentRef(pk: 7, uuid: "ABC")
        #expect(full.matches(DocumentRef(pk: 7)))
        #expect(full.matches(DocumentRef(uuid: "abc")))
        #expect(!full.matches(DocumentRef(pk: 8)))
        #expect(!DocumentRef().matches(DocumentRef()))
    }

    @Test func webhookEventNamesOfBothFlavours() {
        #expect(WebhookEvent(name: "BOOK_VERIFIED") == .bookVerified)
        #expect(WebhookEvent(name: "DOC_VERIFIED") == .documentVerified)
        #expect(WebhookEvent(name: "book.completed").suggestsAnalyticsReady)
        #expect(WebhookEvent(name: "book.verified").suggestsBookFinished)
        #expect(WebhookEvent(name: "book.something_new") == .unknown("book.something_new"))
        #expect(!WebhookEvent(name: "book.something_new").suggestsBookFinished)
    }
}
