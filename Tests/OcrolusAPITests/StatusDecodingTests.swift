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
