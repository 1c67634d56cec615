/// What kind of event a webhook announced, from either payload flavour.
///
/// Org-level events are dotted (`book.verified`), account-level ones upper-case (`BOOK_VERIFIED`);
/// the legacy thin body has no event name at all and is classified from its `status`.
public enum WebhookEvent: Hashable, Sendable, CustomStringConvertible {
    case documentUploaded
    case documentClassified
    case documentVerified
    case documentSignalFound
    case bookClassified
    case bookVerified
    /// `book.completed`: all tasks done, analytics ready.
    case bookCompleted
    /// `book.analytics_v2.generated`: analytics ready.
    case bookAnalyticsGenerated
    case bookSignalFound
    /// The legacy thin body `{status, uploaded_doc_pk, book_pk}`.
    case documentStatus
    /// An event name this build does not know, kept verbatim.
    case unknown(String)

    /// The event an org-level or account-level name denotes; an unknown name is kept verbatim.
    public init(name: String) {
        switch name {
        case "document.upload_succeeded": self = .documentUploaded
        case "document.classification_succeeded": self = .documentClassified
        case "document.verification_succeeded", "DOC_VERIFIED": self = .documentVerified
        case "document.detect.signal_found": self = .documentSignalFound
        case "book.classified": self = .bookClassified
        case "book.verified", "BOOK_VERIFIED": self = .bookVerified
        case "book.completed": self = .bookCompleted
        case "book.analytics_v2.generated": self = .bookAnalyticsGenerated
        case "book.detect.signal_found": self = .bookSignalFound
        default: self = .unknown(name)
        }
    }

    /// The org-level name of the event (`document.status` for the thin body).
    public var name: String {
        switch self {
        case .documentUploaded: "document.upload_succeeded"
        case .documentClassified: "document.classification_succeeded"
        case .documentVerified: "document.verification_succeeded"
        case .documentSignalFound: "document.detect.signal_found"
        case .bookClassified: "book.classified"
        case .bookVerified: "book.verified"
        case .bookCompleted: "book.completed"
        case .bookAnalyticsGenerated: "book.analytics_v2.generated"
        case .bookSignalFound: "book.detect.signal_found"
        case .documentStatus: "document.status"
        case .unknown(let name): name
        }
    }

    /// Events that say the whole Book may have finished.
    public var suggestsBookFinished: Bool {
        switch self {
        case .bookVerified, .bookCompleted, .bookAnalyticsGenerated: true
        default: false
        }
    }

    /// Events that say analytics are ready to fetch (a waiting job becomes due at once).
    public var suggestsAnalyticsReady: Bool {
        self == .bookCompleted || self == .bookAnalyticsGenerated
    }

    /// The event name.
    public var description: String { name }
}

/// A webhook reduced to what the Book machine may use: a hint, never the truth.
public struct WebhookHint: Hashable, Sendable {
    /// What the webhook announced.
    public var event: WebhookEvent
    /// The document the event is about, when it names one.
    public var document: DocumentRef?
    /// A document status carried by the body (thin body, `DOC_VERIFIED`), if any.
    public var documentStatus: DocumentStatus?
    /// A book status carried by the body (`status: BOOK_COMPLETE`), if any.
    public var bookStatus: BookStatus?
    /// Documents listed by book-level events (`uploaded_docs[]`).
    public var listedDocuments: [DocumentSnapshot]
    /// The delivery passed an authentication check (signature, HTTP Basic, or the source
    /// allowlist). Only an authenticated body may stand in for a status call, and only an
    /// authenticated delivery about a Book marked deleted brings a poll.
    public var authenticated: Bool
    /// The Book's name a book-level body carries (`book_name`), if any: kept for `status` when
    /// the Book has none yet (a status answer's name wins: it is never older).
    public var bookName: String?

    /// A hint; `authenticated` only when the delivery passed a check of its origin.
    public init(
        event: WebhookEvent,
        document: DocumentRef? = nil,
        documentStatus: DocumentStatus? = nil,
        bookStatus: BookStatus? = nil,
        listedDocuments: [DocumentSnapshot] = [],
        authenticated: Bool = false,
        bookName: String? = nil
    ) {
        self.authenticated = authenticated
        self.bookName = bookName
        self.event = event
        self.document = document
        self.documentStatus = documentStatus
        self.bookStatus = bookStatus
        self.listedDocuments = listedDocuments
    }

    /// What this hint implies about its document: a status it carries, else what the event means.
    public var impliedDocumentProgress: DocumentProgress? {
        if let documentStatus { return documentStatus.progress }
        switch event {
        case .documentVerified: return .succeeded
        case .documentUploaded, .documentClassified: return .inProgress
        default: return nil
        }
    }

    /// True when the hint says the whole Book may be finished.
    public var suggestsBookFinished: Bool {
        event.suggestsBookFinished || bookStatus == .verified
    }

    /// The documents of a book-level "finished" event whose body lists them all finished
    /// (`book.verified` / `book.completed` with `uploaded_docs[]`, and no book status other than
    /// finished), or nil. Such a body is Ocrolus's own view of the whole Book when it finished; the
    /// machine acts on it only while webhooks are measured reliable (see `BookMachine.apply`).
    public var finishedBody: [DocumentSnapshot]? {
        guard event == .bookVerified || event == .bookCompleted, !listedDocuments.isEmpty,
            bookStatus == nil || bookStatus == .verified,
            listedDocuments.allSatisfy({ !$0.ref.isEmpty && $0.status.isFinished })
        else { return nil }
        return listedDocuments
    }
}
