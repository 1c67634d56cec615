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
        // Every character JSON must escape, and some it need not.
        WebhookHint(
            event: .unknown("ev\u{0}\"\\"),
            document: DocumentRef(pk: -1, uuid: "\u{1}\u{1F}\n\r\t\u{8}\u{C}"),
            listedDocuments: [DocumentSnapshot(ref: DocumentRef(pk: Int.max), status: .rejected, rejectionReason: "a\\b\"c/\u{7F}\u{2028}😀é")],
            bookName: "\u{0}x\u{1B}[31m"
        ),
        WebhookHint(event: .unknown("")),
        WebhookHint(event: WebhookEvent(name: "DOC_VERIFIED"), document: DocumentRef(pk: 4), documentStatus: .verificationComplete),
    ]

    @Test(arguments: hints)
    func aStoredHintReadsBackAsItWasDecoded(_ hint: WebhookHint) throws {
        #expect(WebhookHint(storedJSON: hint.storedJSON) == hint)
    }

    /// The hand-written form is the JSON `JSONEncoder` would write, member for member.
    @Test(arguments: hints)
    func theStoredFormIsValidJSONWithTheCodableMembers(_ hint: WebhookHint) throws {
        let written = try #require(JSONSerialization.jsonObject(with: Data(hint.storedJSON.utf8)) as? NSDictionary)
        #expect(written["v"] as? Int == 2)
        #expect(written["event"] as? String == hint.event.name)
        #expect(written["name"] as? String == hint.bookName)
        #expect(written["documentUUID"] as? String == hint.document?.uuid)
        #expect(written["documentPK"] as? Int == hint.document?.pk)
        let listed = written["listed"] as? [NSDictionary] ?? []
        #expect(listed.map { $0["rejectionReason"] as? String } == hint.listedDocuments.map(\.rejectionReason))
        #expect(listed.map { $0["pk"] as? Int } == hint.listedDocuments.map(\.ref.pk))
        #expect(written["thin"] as? Bool == (hint.event == .documentStatus ? true : nil))
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
