import BookWatchCore
import Foundation
import Testing

@testable import OcrolusAPI

@Suite struct WebhookPayloadTests {
    let book = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!

    @Test func orgLevelDocumentEvent() throws {
        let decoded = try DecodedWebhook.decode(try TestData.payload("webhook-org-document-verification-succeeded.json"))
        #expect(decoded.bookUUID == book)
        #expect(decoded.bookPK == 71_400_892)
        #expect(decoded.hint.event == .documentVerified)
        #expect(decoded.hint.document == DocumentRef(pk: 133_257_741, uuid: "5c12b7b2-8f0e-4c4e-9b51-2a8c1f3f9d10"))
        #expect(decoded.hint.impliedDocumentProgress == .succeeded)
    }

    @Test func orgLevelBookEventsWithListedDocuments() throws {
        let verified = try DecodedWebhook.decode(try TestData.payload("webhook-org-book-verified.json"))
        #expect(verified.hint.event == .bookVerified)
        #expect(verified.hint.listedDocuments.count == 3)
        #expect(verified.hint.listedDocuments.last?.status == .rejected)
        #expect(verified.hint.suggestsBookFinished)
        let completed = try DecodedWebhook.decode(try TestData.payload("webhook-org-book-completed.json"))
        #expect(completed.hint.event == .bookCompleted)
        #expect(completed.hint.bookStatus == .verified)  // status BOOK_COMPLETE
        #expect(completed.hint.event.suggestsAnalyticsReady)
    }

    /// A control character (a NUL: PostgreSQL refuses it in text, failing the whole group commit
    /// of deliveries it is in) in a name or id is refused; in the Book's name it is dropped.
    @Test func controlCharactersAreRefusedInIdsAndDroppedFromTheName() throws {
        let uuid = "09c52985-2f05-4022-a738-9277cc335c7e"
        for body in [
            #"{"event_name":"book.verified\u0000","book_uuid":"\#(uuid)"}"#,
            #"{"event_name":"document.verification_succeeded","book_uuid":"\#(uuid)","doc_uuid":"d\u0000"}"#,
            #"{"event_name":"book.verified","book_uuid":"\#(uuid)","uploaded_docs":[{"uuid":"d-1","status":"COMPLETED\u0007"}]}"#,
        ] {
            #expect(throws: WebhookPayloadError(reason: "a name or id contains a control character")) { try DecodedWebhook.decode(Array(body.utf8)) }
        }
        let named = try DecodedWebhook.decode(Array(#"{"event_name":"book.classified","book_uuid":"\#(uuid)","book_name":"Acme\u0000 Bakery"}"#.utf8))
        #expect(named.hint.bookName == "Acme Bakery")
    }

    /// The byte-level test for control characters agrees with Unicode's general category Cc for
    /// every scalar, alone and between other text (a C1 character is two UTF-8 bytes, 0xC2 0x8X).
    @Test func theControlCharacterTestIsUnicodesCategoryCc() {
        var disagreements: [UInt32] = []
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }  // surrogates
            let control = scalar.properties.generalCategory == .control
            if scalar.isControlCharacter != control { disagreements.append(value) }
            if value < 0x800 || value % 97 == 0 {
                let text = "a\u{00E9}" + String(Character(scalar)) + "\u{00C2}z"
                if text.containsControlCharacter != control || (text.withoutControlCharacters == text) == control {
                    disagreements.append(value)
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(10).map { String($0, radix: 16) })")
    }

    @Test func aBookNameIsReadAndAWrongTypeIsNoReasonToRefuse() throws {
        let uuid = "09c52985-2f05-4022-a738-9277cc335c7e"
        let named = try DecodedWebhook.decode(Array(#"{"event_name":"book.classified","book_uuid":"\#(uuid)","book_name":"Acme Bakery"}"#.utf8))
        #expect(named.hint.bookName == "Acme Bakery")
        for odd in ["7", "null", #"{"a":1}"#, #""""#] {
            let decoded = try DecodedWebhook.decode(Array(#"{"event_name":"book.classified","book_uuid":"\#(uuid)","book_name":\#(odd)}"#.utf8))
            #expect(decoded.hint.bookName == nil && decoded.bookUUID == book)
        }
    }

    @Test func accountLevelBookVerifiedWithOnlyAPk() throws {
        let decoded = try DecodedWebhook.decode(try TestData.payload("webhook-account-book-verified.json"))
        #expect(decoded.bookUUID == nil)
        #expect(decoded.bookPK == 71_400_892)
        #expect(decoded.hint.event == .bookVerified)
        #expect(decoded.hint.bookStatus == .verified)
    }

    @Test func thinAccountBody() throws {
        let decoded = try DecodedWebhook.decode(try TestData.payload("webhook-account-thin.json"))
        #expect(decoded.eventName == "")
        #expect(decoded.bookPK == 71_400_892)
        #expect(decoded.hint.event == .documentStatus)
        #expect(decoded.hint.document == DocumentRef(pk: 133_257_741))
        #expect(decoded.hint.documentStatus == .verificationComplete)
        // The documented test body with zeros decodes too.
        let zeros = try DecodedWebhook.decode(Array(#"{"status": "VERIFICATION_COMPLETE", "uploaded_doc_pk": 0, "book_pk": 0}"#.utf8))
        #expect(zeros.bookPK == 0)
    }

    @Test func unknownEventsAreKept() throws {
        let decoded = try DecodedWebhook.decode(try TestData.payload("webhook-org-unknown-event.json"))
        #expect(decoded.hint.event == .bookSignalFound)
        let novel = try DecodedWebhook.decode(
            Array(#"{"event_name":"book.teleported","book_uuid":"09c52985-2f05-4022-a738-9277cc335c7e","extra":{"a":[1,2]}}"#.utf8)
        )
        #expect(novel.hint.event == .unknown("book.teleported"))
        #expect(novel.eventName == "book.teleported")
    }

    @Test func accountLevelDocVerifiedCarriesItsStatus() throws {
        let decoded = try DecodedWebhook.decode(
            Array(#"{"event_name":"DOC_VERIFIED","status":"REJECTED","uploaded_doc_pk":"77","book_pk":"12"}"#.utf8)
        )
        #expect(decoded.hint.event == .documentVerified)
        #expect(decoded.hint.documentStatus == .rejected)
        #expect(decoded.hint.impliedDocumentProgress == .failed)
        #expect(decoded.bookPK == 12)
        #expect(decoded.hint.document == DocumentRef(pk: 77))
    }

    @Test(arguments: [
        ("", "not valid JSON"),
        ("not json", "not valid JSON"),
        ("[1,2]", "not a JSON object"),
        ("{}", "missing book_uuid and book_pk"),
        (#"{"event_name":"book.verified"}"#, "missing book_uuid and book_pk"),
        (#"{"book_uuid": 5}"#, "book_uuid has the wrong type"),
        (#"{"book_pk": true}"#, "book_pk has the wrong type"),
        (#"{"book_pk": "abc"}"#, "book_pk has the wrong type"),
        (#"{"book_uuid": "nope"}"#, "is not a uuid"),
        (#"{"book_pk": 1, "status": 3}"#, "status has the wrong type"),
        (#"{"book_pk": 1, "uploaded_docs": {}}"#, "uploaded_docs has the wrong type"),
    ])
    func malformedBodiesSayWhy(body: String, reason: String) {
        do {
            _ = try DecodedWebhook.decode(Array(body.utf8))
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.reason.contains(reason), "\(error.reason)")
        }
    }
}
