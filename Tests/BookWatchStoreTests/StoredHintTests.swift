import BookWatchCore
import BookWatchStore
import Foundation
import Testing

/// The hint the inbox keeps (`webhook_inbox.hint`) reads back as the hint admission decoded.
@Suite struct StoredHintTests {
    static let hints: [WebhookHint] = [
        WebhookHint(event: .documentVerified, document: DocumentRef(pk: 7, uuid: "5C12B7B2-8F0E-4C4E-9B51-2A8C1F3F9D10")),
        WebhookHint(event: .documentStatus, document: DocumentRef(pk: 3), documentStatus: .verificationComplete),
        WebhookHint(
            event: .bookVerified,
            bookStatus: .verified,
            listedDocuments: [
                DocumentSnapshot(ref: DocumentRef(pk: 1), status: .completed),
                DocumentSnapshot(ref: DocumentRef(uuid: "doc-2"), status: .rejected, rejectionReason: "unreadable"),
            ]
        ),
        WebhookHint(event: .unknown("book.something_new"), bookStatus: .unknown("BRAND_NEW")),
        WebhookHint(event: .bookCompleted),
        WebhookHint(event: .bookClassified, bookName: "Acme \"Bakery\" ünïcode"),
        WebhookHint(event: .unknown("document.status")),
        WebhookHint(event: .unknown("")),
        WebhookHint(event: WebhookEvent(name: "DOC_VERIFIED"), document: DocumentRef(pk: 4), documentStatus: .verificationComplete),
    ]

    @Test(arguments: hints)
    func aStoredHintReadsBackAsItWasDecoded(_ hint: WebhookHint) throws {
        #expect(WebhookHint(storedJSON: hint.storedJSON) == hint)
    }

    @Test func authenticationIsTheRowsNotTheHints() {
        let hint = WebhookHint(event: .bookVerified, authenticated: true)
        #expect(WebhookHint(storedJSON: hint.storedJSON)?.authenticated == false)
    }

    @Test(arguments: [
        "", "not json", "[]", #"{"thin":true}"#, #"{"v":1,"event":"book.verified"}"#, #"{"v":3,"event":"book.verified"}"#,
        #"{"event":"book.verified"}"#,
    ])
    func textThatIsNotAHintIsNone(_ text: String) {
        #expect(WebhookHint(storedJSON: text) == nil)
    }
}
