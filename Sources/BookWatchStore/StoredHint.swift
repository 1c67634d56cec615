import BookWatchCore
import Foundation

/// A hint as the inbox keeps it (`webhook_inbox.hint`, JSON): the delivery is decoded once, at the
/// door (`WebhookAdmission`), and the watcher applies what was read there instead of decoding the
/// body again. `authenticated` is not part of it: the row's own column says that.
extension WebhookHint {
    private struct Stored: Decodable {
        /// The form's version: a row written by another version of the form is decoded from its
        /// body instead (a fixed decoder then reaches rows queued before the fix too).
        var v: Int
        var event: String
        /// The legacy thin body (`WebhookEvent.documentStatus`, which has no event name of its own).
        var thin: Bool?
        var documentPK: Int?
        var documentUUID: String?
        var documentStatus: String?
        var bookStatus: String?
        var listed: [Listed]?
        var name: String?

        struct Listed: Decodable {
            var pk: Int?
            var uuid: String?
            var status: String
            var rejectionReason: String?
        }
    }

    /// The version of the stored form (and of the decoder that made it): bump it when the decoder's
    /// reading of a body changes, so rows already queued are read again from their bodies.
    static let storedVersion = 2

    /// The stored form (compact JSON, the members of `Stored`). Written by hand: it is made once per
    /// delivery at the webhook door, where `JSONEncoder` cost about 3% of the ingress's CPU.
    package var storedJSON: String {
        var json = CompactJSON()
        json.add("v", Self.storedVersion)
        json.add("event", event.name)
        json.add("thin", event == .documentStatus ? true : nil)
        json.add("documentPK", document?.pk)
        json.add("documentUUID", document?.uuid)
        json.add("documentStatus", documentStatus?.rawValue)
        json.add("bookStatus", bookStatus?.rawValue)
        json.add(
            "listed",
            listedDocuments.isEmpty
                ? nil
                : listedDocuments.map { listed in
                    var item = CompactJSON()
                    item.add("pk", listed.ref.pk)
                    item.add("uuid", listed.ref.uuid)
                    item.add("status", listed.status.rawValue)
                    item.add("rejectionReason", listed.rejectionReason)
                    return item
                }
        )
        json.add("name", bookName)
        return json.text
    }

    private static let decoder = JSONDecoder()

    /// The hint a row stored, or nil when the text is not one (the caller decodes the body instead).
    package init?(storedJSON: String) {
        guard let stored = try? Self.decoder.decode(Stored.self, from: Data(storedJSON.utf8)), stored.v == Self.storedVersion else {
            return nil
        }
        let document = stored.documentPK != nil || stored.documentUUID != nil ? DocumentRef(pk: stored.documentPK, uuid: stored.documentUUID) : nil
        self.init(
            event: stored.thin == true ? .documentStatus : WebhookEvent(name: stored.event),
            document: document,
            documentStatus: stored.documentStatus.map(DocumentStatus.init),
            bookStatus: stored.bookStatus.map(BookStatus.init),
            listedDocuments: (stored.listed ?? []).map {
                DocumentSnapshot(ref: DocumentRef(pk: $0.pk, uuid: $0.uuid), status: DocumentStatus($0.status), rejectionReason: $0.rejectionReason)
            },
            bookName: stored.name
        )
    }
}
