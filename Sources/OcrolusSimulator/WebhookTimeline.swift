import BookWatchCore
import Foundation

/// One webhook Ocrolus would send: when, about which Book, with which body.
public struct SimEvent: Sendable {
    /// When (seconds from the scenario start).
    public let at: Double
    /// The Book (index in the scenario).
    public let bookIndex: Int
    /// The event name.
    public let name: String
    /// The body Ocrolus would send.
    public let body: [UInt8]
}

extension Scenario {
    /// Every event of the scenario in time order, in each Book's flavour.
    public func events() -> [SimEvent] {
        var events: [SimEvent] = []
        for book in books {
            events += book.events()
        }
        return events.sorted { ($0.at, $0.bookIndex) < ($1.at, $1.bookIndex) }
    }
}

extension SimBook {
    func events() -> [SimEvent] {
        var events: [SimEvent] = []
        func add(_ at: Double, _ name: String, _ fields: [String: Any]) {
            guard !isDeleted(at: at) else { return }
            let body =
                SimulatorJSON.encode(fields, escapingSlashes: true)
                ?? Array((try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data())
            events.append(SimEvent(at: at, bookIndex: index, name: name, body: body))
        }
        switch flavour {
        case .org, .mixed:
            let base: [String: Any] = ["book_pk": pk, "book_uuid": uuid.rawValue, "severity": "LOW", "notification_type": "STATUS"]
            for document in documents {
                let docFields = base.merging([
                    "doc_uuid": document.uuid, "uploaded_doc_pk": document.pk, "uploaded_doc_uuid": document.uuid,
                ]) { $1 }
                add(
                    document.uploadAt,
                    "document.upload_succeeded",
                    docFields.merging(["event_name": "document.upload_succeeded", "notification_reason": "Document uploaded"]) { $1 }
                )
                add(
                    document.classifyAt,
                    "document.classification_succeeded",
                    docFields.merging(["event_name": "document.classification_succeeded"]) { $1 }
                )
                // Only documented events: a verified document has one; a rejected or failed one has
                // none at org level (its Book's events and the status endpoint say it finished).
                if document.outcome == .verificationComplete {
                    add(
                        document.finishAt,
                        "document.verification_succeeded",
                        docFields.merging(["event_name": "document.verification_succeeded"]) { $1 }
                    )
                }
            }
            for generation in generations {
                let listed = documents.filter { $0.uploadAt <= generation.verifiedAt }.map {
                    ["uuid": $0.uuid, "status": $0.outcome.rawValue]
                }
                add(
                    generation.verifiedAt,
                    "book.verified",
                    base.merging([
                        "event_name": "book.verified", "notification_reason": "Book is verified", "uploaded_docs": listed,
                    ]) { $1 }
                )
                add(generation.analyticsReadyAt, "book.analytics_v2.generated", base.merging(["event_name": "book.analytics_v2.generated"]) { $1 })
                add(
                    generation.analyticsReadyAt,
                    "book.completed",
                    base.merging([
                        "event_name": "book.completed", "status": "BOOK_COMPLETE", "tasks": ["ANALYTICS", "CAPTURE"], "uploaded_docs": listed,
                    ]) { $1 }
                )
            }
        case .account:
            for document in documents {
                // Half of the documents' events come as the documented thin body, half as DOC_VERIFIED.
                if document.pk % 2 == 0 {
                    add(document.finishAt, "", ["status": document.outcome.rawValue, "uploaded_doc_pk": document.pk, "book_pk": pk])
                } else {
                    add(
                        document.finishAt,
                        "DOC_VERIFIED",
                        [
                            "event_name": "DOC_VERIFIED", "status": document.outcome.rawValue, "uploaded_doc_pk": document.pk, "book_pk": pk,
                        ]
                    )
                }
            }
            for generation in generations {
                add(generation.verifiedAt, "BOOK_VERIFIED", ["event_name": "BOOK_VERIFIED", "status": "BOOK_COMPLETE", "book_pk": pk])
            }
        }
        return events
    }
}
