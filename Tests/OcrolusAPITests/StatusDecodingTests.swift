import BookWatchClocks
import BookWatchCore
import Foundation
import Testing

@testable import OcrolusAPI

@Suite struct StatusDecodingTests {
    @Test func verifiedBookWithARejectedDocumentIsFinished() throws {
        let result = try V1Envelope.bookStatus(httpStatus: 200, body: try TestData.payload("status-verified.json"), retryAfter: nil)
        #expect(result.uuid == BookUUID("09c52985-2f05-4022-a738-9277cc335c7e"))
        #expect(result.pk == 71_400_892)
        #expect(result.snapshot.isFinished)
        guard case .present(_, .verified, let documents) = result.snapshot else {
            Issue.record("not present")
            return
        }
        #expect(documents.count == 3)
        #expect(documents[2].rejectionReason == "INVALID DOCUMENT")
    }

    @Test func mixedDocsCount() throws {
        let result = try V1Envelope.bookStatus(httpStatus: 200, body: try TestData.payload("status-verified-mixed.json"), retryAfter: nil)
        guard case .present(_, _, let documents) = result.snapshot else {
            Issue.record("not present")
            return
        }
        #expect(documents.map(\.status) == [.verificationComplete, .completed])
        #expect(result.snapshot.isFinished)
    }

    @Test func verifyingBookIsNotFinished() throws {
        let result = try V1Envelope.bookStatus(httpStatus: 200, body: try TestData.payload("status-verifying.json"), retryAfter: nil)
        #expect(!result.snapshot.isFinished)
    }

    @Test func errorInsideHTTP200IsAnErrorAndBookNotFoundIsGone() throws {
        let result = try V1Envelope.bookStatus(httpStatus: 200, body: try TestData.payload("status-error-in-200.json"), retryAfter: nil)
        #expect(result.snapshot == .gone)
        for status in [400, 404] {
            let gone = try V1Envelope.bookStatus(
                httpStatus: status,
                body: Array(#"{"status":\#(status),"code":1401,"message":"Book not found","response":null}"#.utf8),
                retryAfter: nil
            )
            #expect(gone.snapshot == .gone)
        }
        let permission = #"{"status":200,"code":2102,"message":"no permission","response":null}"#
        #expect(throws: OcrolusError(.permanent, endpoint: "book_status", httpStatus: 200, code: 2102, message: "no permission")) {
            try V1Envelope.bookStatus(httpStatus: 200, body: Array(permission.utf8), retryAfter: nil)
        }
        let inner500 = #"{"status":503,"message":"busy"}"#
        let error = #expect(throws: OcrolusError.self) { try V1Envelope.bookStatus(httpStatus: 200, body: Array(inner500.utf8), retryAfter: nil) }
        #expect(error?.kind == .transient)
    }

    @Test func deletedStatusIsGone() throws {
        let body =
            #"{"status":200,"message":"OK","response":{"pk":1,"uuid":"09c52985-2f05-4022-a738-9277cc335c7e","book_status":"DELETED","docs":[]}}"#
        #expect(try V1Envelope.bookStatus(httpStatus: 200, body: Array(body.utf8), retryAfter: nil).snapshot == .gone)
    }

    @Test func tolerantOfMissingOptionalFieldsAndExtras() throws {
        let body =
            #"{"status":200,"response":{"id":9,"book_uuid":"09c52985-2f05-4022-a738-9277cc335c7e","book_status":"VERIFYING","docs":[{"id":1,"status":"SOMETHING_NEW","extra":[1]}],"whatever":{}}}"#
        let result = try V1Envelope.bookStatus(httpStatus: 200, body: Array(body.utf8), retryAfter: nil)
        #expect(result.pk == 9)
        guard case .present(_, _, let docs) = result.snapshot else {
            Issue.record("not present")
            return
        }
        #expect(docs.first?.status == .unknown("SOMETHING_NEW"))
        #expect(docs.first?.ref.pk == 1)
        // No docs and no mixed_docs at all.
        let bare = #"{"status":200,"response":{"pk":2,"uuid":"09c52985-2f05-4022-a738-9277cc335c7e","book_status":"CREATED"}}"#
        #expect(
            try V1Envelope.bookStatus(httpStatus: 200, body: Array(bare.utf8), retryAfter: nil).snapshot
                == .present(pk: 2, status: .created, documents: [])
        )
    }

    /// Numbers as strings, strings as numbers, nulls and fractions in any scalar: the answer is
    /// still read (before, one such field made it unreadable and the Book's poll was retried
    /// forever); what cannot be read is absent.
    @Test func oddlyTypedFieldsAreReadLeniently() throws {
        let body = #"""
            {"status":200,"response":{"pk":"71400892","uuid":"09c52985-2f05-4022-a738-9277cc335c7e","name":12,
             "book_status":"VERIFIED","docs":[
               {"pk":"11","uuid":"d-1","status":"VERIFICATION_COMPLETE","rejection_reason":null},
               {"pk":1.5,"id":" 12 ","uuid":7,"status":"REJECTED","rejection_reason":{"why":"?"}}],
             "mixed_docs":[{"pk":null,"uuid":"d-3","status":"COMPLETED"}]}}
            """#
        let result = try V1Envelope.bookStatus(httpStatus: 200, body: Array(body.utf8), retryAfter: nil)
        #expect(result.pk == 71_400_892)
        #expect(result.name == nil)
        guard case .present(let pk, .verified, let docs) = result.snapshot else {
            Issue.record("not present: \(result.snapshot)")
            return
        }
        #expect(pk == 71_400_892)
        #expect(docs.map(\.ref) == [DocumentRef(pk: 11, uuid: "d-1"), DocumentRef(pk: 12, uuid: nil), DocumentRef(pk: nil, uuid: "d-3")])
        #expect(docs.map(\.status) == [.verificationComplete, .rejected, .completed])
        #expect(docs[1].rejectionReason == nil)
        #expect(result.snapshot.isFinished)
        // A NUL in a text field is dropped (PostgreSQL would refuse the Book's transition).
        let nul =
            #"{"status":200,"response":{"pk":1,"uuid":"09c52985-2f05-4022-a738-9277cc335c7e","name":"A\u0000B","book_status":"VERIFIED","docs":[{"uuid":"d\u0000-1","status":"COMPLETED"}]}}"#
        let cleaned = try V1Envelope.bookStatus(httpStatus: 200, body: Array(nul.utf8), retryAfter: nil)
        #expect(cleaned.name == "AB")
        guard case .present(_, _, let cleanedDocs) = cleaned.snapshot else {
            Issue.record("not present")
            return
        }
        #expect(cleanedDocs.map(\.ref) == [DocumentRef(uuid: "d-1")])
    }

    /// Documents listed without pk, id or uuid are named by their place among such documents, so
    /// the same listing reads the same twice (the machine then sees no new document).
    @Test func unnamedDocumentsGetAStableStandInName() throws {
        let body =
            #"{"status":200,"response":{"pk":3,"uuid":"09c52985-2f05-4022-a738-9277cc335c7e","book_status":"VERIFIED","docs":[{"status":"COMPLETED"},{"pk":4,"status":"COMPLETED"},{"pk":null,"uuid":null,"status":"REJECTED"}]}}"#
        let first = try V1Envelope.bookStatus(httpStatus: 200, body: Array(body.utf8), retryAfter: nil)
        guard case .present(_, _, let docs) = first.snapshot else {
            Issue.record("not present")
            return
        }
        #expect(docs.map(\.ref) == [DocumentRef(uuid: "unnamed-1"), DocumentRef(pk: 4), DocumentRef(uuid: "unnamed-2")])
        // The machine reads the second, identical answer as no change.
        var machine = BookMachine(uuid: BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!)
        _ = machine.apply(.snapshot(first.snapshot, PollAnswer()), at: Date(timeIntervalSince1970: 1_774_000_000))
        _ = machine.apply(.analytics(generation: 1, .stored), at: Date(timeIntervalSince1970: 1_774_000_010))
        let again = try V1Envelope.bookStatus(httpStatus: 200, body: Array(body.utf8), retryAfter: nil)
        _ = machine.apply(.snapshot(again.snapshot, PollAnswer()), at: Date(timeIntervalSince1970: 1_774_000_100))
        #expect(machine.phase == .complete && machine.generation == 1)
    }

    /// Without Ocrolus's own error code a 4xx is a gateway's page: transient, never a refusal.
    @Test(arguments: [
        (500, OcrolusError.Kind.transient), (502, .transient), (503, .transient), (504, .transient),
        (429, .transient), (403, .transient), (400, .transient), (404, .transient), (401, .unauthorized),
    ])
    func httpErrorsWithoutACodeAreClassified(status: Int, kind: OcrolusError.Kind) {
        let error = V1Envelope.declaredError(httpStatus: status, body: Array("<html>oops</html>".utf8), endpoint: "x", retryAfter: 3)
        #expect(error?.kind == kind)
        #expect(error?.retryAfter == 3)
    }

    /// In Ocrolus's own words: 2102 refuses for good; 1401 is gone for a status call (twice, the
    /// machine decides) and a transient error for an analytics call.
    @Test func errorsWithAnOcrolusCodeAreClassifiedByIt() throws {
        let refused = V1Envelope.declaredError(
            httpStatus: 403,
            body: Array(#"{"status":403,"code":2102,"message":"no permission"}"#.utf8),
            endpoint: "x",
            retryAfter: nil
        )
        #expect(refused?.kind == .permanent)
        let gone = Array(#"{"status":404,"code":1401,"message":"Book not found"}"#.utf8)
        #expect(V1Envelope.declaredError(httpStatus: 404, body: gone, endpoint: "analytics/summary", retryAfter: nil)?.kind == .transient)
        #expect(try V1Envelope.bookStatus(httpStatus: 404, body: gone, retryAfter: nil).snapshot == .gone)
        let bare = Array("<html><h1>404 Not Found</h1></html>".utf8)
        #expect(throws: OcrolusError.self) { try V1Envelope.bookStatus(httpStatus: 404, body: bare, retryAfter: nil) }
    }
}

/// The client checks that a status answer is about the Book it asked for.
@Suite struct StatusAnswerIdentityTests {
    /// Answers token requests, and every other request with `body`.
    struct Answering: HTTPTransport {
        let body: String
        func send(_ request: OutgoingRequest) async throws -> IncomingResponse {
            if request.url.hasSuffix("/token") {
                return IncomingResponse(status: 200, body: Array(#"{"access_token":"t","token_type":"Bearer","expires_in":3600}"#.utf8))
            }
            return IncomingResponse(status: 200, body: Array(body.utf8))
        }
    }

    static func answer(uuid: String, pk: Int) -> String {
        #"{"status":200,"response":{"pk":\#(pk),"uuid":"\#(uuid)","book_status":"VERIFIED","docs":[{"pk":5,"status":"COMPLETED"}]}}"#
    }

    /// An answer about another Book (misrouted, a proxy's cache) would read as a reopen of this
    /// one (documents it never had): it is a transient error, never applied.
    @Test func anAnswerAboutAnotherBookIsATransientError() async throws {
        let asked = "09c52985-2f05-4022-a738-9277cc335c7e"
        let other = "1a2b3c4d-0000-4000-8000-00000000000b"
        let misrouted = ClientCancellationTests.statusCall(through: Answering(body: Self.answer(uuid: other, pk: 7)))
        let error = await #expect(throws: OcrolusError.self) { try await misrouted.value }
        #expect(error?.kind == .transient)
        #expect(error?.description.contains(other) == true)
        // The same answer about the Book asked for (its uuid in upper case too) is applied.
        let right = ClientCancellationTests.statusCall(through: Answering(body: Self.answer(uuid: asked.uppercased(), pk: 7)))
        #expect(try await right.value.snapshot.isFinished)
    }

    @Test func anAnswerAboutAnotherPkIsATransientError() async throws {
        let clock = ManualClock()
        func client(_ body: String) -> OcrolusClient {
            OcrolusClient(
                configuration: OcrolusConfiguration(
                    apiBaseURL: "http://api",
                    tokenURL: "http://auth/token",
                    credentials: .init(clientID: "c", clientSecret: "s")
                ),
                transport: Answering(body: body),
                limiter: RateLimiter(rate: 100, burst: 100, clock: clock),
                clock: clock
            )
        }
        let uuid = "09c52985-2f05-4022-a738-9277cc335c7e"
        let error = await #expect(throws: OcrolusError.self) { try await client(Self.answer(uuid: uuid, pk: 8)).bookStatus(pk: 7, priority: .urgent) }
        #expect(error?.kind == .transient)
        #expect(try await client(Self.answer(uuid: uuid, pk: 7)).bookStatus(pk: 7, priority: .urgent).pk == 7)
    }
}
