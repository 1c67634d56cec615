import BookWatchCore
import Foundation

/// A Book status answer reduced to what bookwatch needs.
public struct BookStatusResult: Sendable, Equatable {
    /// The uuid the answer names (nil when the Book is gone and the answer has no body).
    public var uuid: BookUUID?
    /// The Book's pk, when the answer names it.
    public var pk: Int?
    /// The Book's name, when the answer carries it.
    public var name: String?
    /// The answer as the machine reads it.
    public var snapshot: BookSnapshot
    /// When the request was sent (after the rate limiter): an answer is dated by its question.
    /// Nil from clients that do not know; the caller then uses the time before the call.
    public var requestedAt: Date?

    /// An answer.
    public init(uuid: BookUUID?, pk: Int?, name: String? = nil, snapshot: BookSnapshot, requestedAt: Date? = nil) {
        self.requestedAt = requestedAt
        self.uuid = uuid
        self.pk = pk
        self.name = name
        self.snapshot = snapshot
    }
}

/// Decoding of the v1 envelope `{"status", "code", "message", "response"}` and the status body.
enum V1Envelope {
    struct Header: Decodable {
        var status: Int?
        var code: Int?
        var message: String?
        var meta: Meta?
        struct Meta: Decodable {
            var status: Int?
            var code: Int?
            var msg: String?
        }
    }

    struct StatusBody: Decodable {
        var response: Book?
    }

    /// Every scalar is read leniently (a number as a string, a string where a number was
    /// expected, a null): one odd field must not make the whole answer unreadable, which retried
    /// the Book's poll forever. An unreadable field is absent.
    struct Book: Decodable {
        var pk: LenientInt?
        var id: LenientInt?
        var uuid: LenientText?
        var bookUUID: LenientText?
        var name: LenientText?
        var bookStatus: LenientText?
        var docs: [Document]?
        var mixedDocs: [Document]?

        enum CodingKeys: String, CodingKey {
            case pk, id, uuid, name, docs
            case bookUUID = "book_uuid"
            case bookStatus = "book_status"
            case mixedDocs = "mixed_docs"
        }
    }

    struct Document: Decodable {
        var pk: LenientInt?
        var id: LenientInt?
        var uuid: LenientText?
        var status: LenientText?
        var rejectionReason: LenientText?

        enum CodingKeys: String, CodingKey {
            case pk, id, uuid, status
            case rejectionReason = "rejection_reason"
        }
    }

    /// The error an envelope declares, if any: an HTTP status other than 200, or a `status`/`code`
    /// inside the body saying so (observed under HTTP 200 too).
    static func declaredError(
        httpStatus: Int,
        body: [UInt8],
        endpoint: String,
        retryAfter: TimeInterval?
    )
        -> OcrolusError?
    {
        let header = try? JSONDecoder().decode(Header.self, from: Data(body))
        let code = header?.code ?? header?.meta?.code
        let bodyStatus = header?.status ?? header?.meta?.status
        let message = header?.message ?? header?.meta?.msg ?? "HTTP \(httpStatus)"
        if httpStatus != 200 {
            return OcrolusError.classify(
                endpoint: endpoint,
                httpStatus: httpStatus,
                code: code,
                message: message,
                retryAfter: retryAfter
            )
        }
        if let bodyStatus, bodyStatus != 200 {
            // An error inside an HTTP 200: classify by the body's own status.
            return OcrolusError.classify(
                endpoint: endpoint,
                httpStatus: bodyStatus,
                code: code,
                message: message,
                retryAfter: retryAfter
            )
        }
        if let code, code != 0, code != 200 {
            return OcrolusError(.permanent, endpoint: endpoint, httpStatus: httpStatus, code: code, message: message)
        }
        return nil
    }

    /// Decodes a status answer; a "Book not found" (1401) answer under any HTTP status is `.gone`.
    /// A 404 without Ocrolus's own error code (a gateway's page, a wrong path) is not: it is a
    /// transient error, since one such answer must never delete a Book.
    static func bookStatus(
        httpStatus: Int,
        body: [UInt8],
        retryAfter: TimeInterval?
    ) throws(OcrolusError)
        -> BookStatusResult
    {
        let endpoint = "book_status"
        if let error = declaredError(httpStatus: httpStatus, body: body, endpoint: endpoint, retryAfter: retryAfter) {
            if error.isBookGone { return BookStatusResult(uuid: nil, pk: nil, snapshot: .gone) }
            throw error
        }
        let decoded: StatusBody
        do {
            decoded = try JSONDecoder().decode(StatusBody.self, from: Data(body))
        } catch {
            throw OcrolusError(.transient, endpoint: endpoint, httpStatus: httpStatus, message: "unreadable status body: \(error)")
        }
        guard let book = decoded.response else {
            throw OcrolusError(.transient, endpoint: endpoint, httpStatus: httpStatus, message: "status body has no response")
        }
        let uuidText = book.uuid?.text ?? book.bookUUID?.text
        let uuid = uuidText.flatMap { BookUUID($0) }
        let status = BookStatus(book.bookStatus?.text ?? "")
        let documents = (book.docs ?? []) + (book.mixedDocs ?? [])
        let pk = book.pk?.value ?? book.id?.value
        // A document listed with neither pk nor uuid would never match itself in the next answer:
        // each answer would show it as new, a reopen, a new generation, the analytics again. It
        // is named by its place among such documents (`unnamed-1`, ...), stable while the listing is.
        var unnamed = 0
        let snapshot = BookSnapshot.present(
            pk: pk,
            status: status,
            documents: documents.map {
                var ref = DocumentRef(pk: $0.pk?.value ?? $0.id?.value, uuid: $0.uuid?.text)
                if ref.pk == nil, ref.uuid == nil {
                    unnamed += 1
                    ref = DocumentRef(uuid: "unnamed-\(unnamed)")
                }
                return DocumentSnapshot(ref: ref, status: DocumentStatus($0.status?.text ?? ""), rejectionReason: $0.rejectionReason?.text)
            }
        ).normalised
        return BookStatusResult(uuid: uuid, pk: pk, name: book.name?.text, snapshot: snapshot)
    }
}
