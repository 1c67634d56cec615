import BookWatchCore
import Foundation

/// A webhook body decoded into what bookwatch uses: which Book, and a hint for its machine.
///
/// One decoder for both flavours: org-level dotted events (`book_uuid`, `doc_uuid`...),
/// account-level upper-case events (`BOOK_VERIFIED`, `DOC_VERIFIED`, often with only `book_pk`),
/// and the legacy thin body `{status, uploaded_doc_pk, book_pk}` with no event name at all.
public struct DecodedWebhook: Sendable, Equatable {
    /// The Book the body names by uuid, if it does.
    public var bookUUID: BookUUID?
    /// The Book the body names by pk, if it does.
    public var bookPK: Int?
    /// The event name as sent, or `""` for the thin body.
    public var eventName: String
    /// What the body tells the machine.
    public var hint: WebhookHint

    /// Decodes a raw body; throws `WebhookPayloadError` for anything that is not a usable delivery.
    public static func decode(_ body: some Collection<UInt8>) throws(WebhookPayloadError) -> DecodedWebhook {
        let bytes = Array(body)
        let raw: RawWebhook
        do {
            raw = try FlatWebhookScanner.scan(bytes) ?? decoder.decode(RawWebhook.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw WebhookPayloadError(reason: Self.describe(error))
        } catch {
            throw WebhookPayloadError(reason: "body is not JSON")
        }
        // Control characters (a NUL above all: PostgreSQL refuses it in text, failing the whole
        // group commit the delivery is in) have no place in a name or an id: refused.
        let texts = [raw.eventName, raw.docUUID, raw.uploadedDocUUID, raw.status] + (raw.uploadedDocs ?? []).flatMap { [$0.uuid, $0.status] }
        if texts.contains(where: { $0?.containsControlCharacter == true }) {
            throw WebhookPayloadError(reason: "a name or id contains a control character")
        }
        var bookUUID: BookUUID?
        if let text = raw.bookUUID ?? raw.uuid {
            guard let parsed = BookUUID(text) else {
                throw WebhookPayloadError(reason: "book_uuid '\(text.prefix(64))' is not a uuid")
            }
            bookUUID = parsed
        }
        let bookPK = raw.bookPK?.value
        guard bookUUID != nil || bookPK != nil else {
            throw WebhookPayloadError(reason: "missing book_uuid and book_pk")
        }

        let eventName = raw.eventName ?? ""
        let documentUUID = raw.uploadedDocUUID ?? raw.docUUID
        let documentPK = raw.uploadedDocPK?.value
        let document = documentUUID != nil || documentPK != nil ? DocumentRef(pk: documentPK, uuid: documentUUID) : nil

        let event: WebhookEvent
        if raw.eventName == nil || eventName.isEmpty {
            event = document != nil ? .documentStatus : .unknown("")
        } else {
            event = WebhookEvent(name: eventName)
        }
        let isBookLevel = eventName.hasPrefix("book.") || eventName.hasPrefix("BOOK_") || (document == nil && raw.eventName == nil)
        var hint = WebhookHint(event: event, document: document)
        if let status = raw.status, !status.isEmpty {
            if isBookLevel {
                hint.bookStatus = BookStatus(status)
            } else {
                hint.documentStatus = DocumentStatus(status)
            }
        }
        hint.listedDocuments = (raw.uploadedDocs ?? []).compactMap { item in
            guard item.uuid != nil || item.pk?.value != nil else { return nil }
            return DocumentSnapshot(
                ref: DocumentRef(pk: item.pk?.value, uuid: item.uuid),
                status: DocumentStatus(item.status ?? "")
            )
        }
        if let name = raw.bookName?.text?.withoutControlCharacters, !name.isEmpty { hint.bookName = name }
        return DecodedWebhook(bookUUID: bookUUID, bookPK: bookPK, eventName: eventName, hint: hint)
    }

    /// One decoder for every delivery (making one per call showed in the ingress's profile).
    private static let decoder = JSONDecoder()

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "body is not a JSON object" : "\(path) has the wrong type"
        case .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "body is not valid JSON" : "\(path) is invalid"
        case .keyNotFound(let key, _):
            return "missing \(key.stringValue)"
        @unknown default:
            return "body cannot be decoded"
        }
    }
}

/// Why a webhook body was refused (answered 400).
public struct WebhookPayloadError: Error, Equatable, CustomStringConvertible {
    /// Why, in a few words (never the body itself).
    public let reason: String
    /// The reason.
    public var description: String { reason }
}

/// The wire shape: every field optional, unknown fields ignored, wrong types refused.
struct RawWebhook: Decodable, Equatable {
    var eventName: String?
    var bookUUID: String?
    var uuid: String?
    var bookPK: FlexibleInt?
    var docUUID: String?
    var uploadedDocUUID: String?
    var uploadedDocPK: FlexibleInt?
    var status: String?
    var uploadedDocs: [RawListedDocument]?
    var bookName: LenientText?

    enum CodingKeys: String, CodingKey {
        case eventName = "event_name"
        case bookUUID = "book_uuid"
        case uuid
        case bookPK = "book_pk"
        case docUUID = "doc_uuid"
        case uploadedDocUUID = "uploaded_doc_uuid"
        case uploadedDocPK = "uploaded_doc_pk"
        case status
        case uploadedDocs = "uploaded_docs"
        case bookName = "book_name"
    }
}

/// A field bookwatch only shows (`book_name`): a string, else nothing; never a reason to refuse
/// the delivery.
struct LenientText: Decodable, Equatable {
    var text: String?

    init(text: String?) { self.text = text }

    init(from decoder: any Decoder) throws {
        // Control characters dropped: a NUL in a name or id would fail the Book's transition on
        // PostgreSQL, at every answer.
        text = (try? decoder.singleValueContainer().decode(String.self))?.withoutControlCharacters
    }
}

struct RawListedDocument: Decodable, Equatable {
    var uuid: String?
    var pk: FlexibleInt?
    var status: String?
}

extension String {
    /// True when a Unicode control character (C0, DEL, C1) is in it. Read from the UTF-8 bytes:
    /// C0 and DEL are single bytes, C1 (U+0080-U+009F) is 0xC2 followed by 0x80-0x9F, and 0xC2 is
    /// only ever a lead byte. (The scalars' general category, read before, was half the cost of
    /// decoding a delivery.)
    var containsControlCharacter: Bool {
        var previous: UInt8 = 0
        for byte in utf8 {
            if byte < 0x20 || byte == 0x7F || (previous == 0xC2 && byte >= 0x80 && byte <= 0x9F) { return true }
            previous = byte
        }
        return false
    }

    /// Itself without its control characters (a free-text field kept, a NUL dropped).
    var withoutControlCharacters: String {
        containsControlCharacter ? String(String.UnicodeScalarView(unicodeScalars.filter { !$0.isControlCharacter })) : self
    }
}

extension Unicode.Scalar {
    /// General category Cc: U+0000-U+001F and U+007F-U+009F, a range fixed by Unicode.
    var isControlCharacter: Bool { value < 0x20 || (0x7F...0x9F).contains(value) }
}

/// An integer read leniently: a JSON number, or a string of digits; anything else (a fraction,
/// text, an object) is nil rather than an error.
struct LenientInt: Decodable, Equatable {
    var value: Int?

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            value = number
        } else if let text = try? container.decode(String.self) {
            value = Int(text.trimmingCharacters(in: .whitespaces))
        } else {
            value = nil
        }
    }
}

/// An integer that may arrive as a JSON number or a string of digits (seen in legacy payloads).
struct FlexibleInt: Decodable, Equatable {
    var value: Int

    init(value: Int) { self.value = value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            value = number
        } else if let text = try? container.decode(String.self), let number = Int(text) {
            value = number
        } else {
            throw DecodingError.typeMismatch(
                Int.self,
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "expected an integer")
            )
        }
    }
}
