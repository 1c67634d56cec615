/// How a Document is named in whatever told us about it.
///
/// Status responses carry both `pk` and `uuid`; webhooks may carry only one of them
/// (the legacy thin body has only `uploaded_doc_pk`, `book.verified` lists only uuids).
/// Two references denote the same Document when they share either identifier.
public struct DocumentRef: Hashable, Sendable, CustomStringConvertible {
    /// The document's primary key at Ocrolus, when known.
    public var pk: Int?
    /// The document's uuid, lower-cased, when known.
    public var uuid: String?

    /// A reference by either identifier or both (the uuid lower-cased).
    public init(pk: Int? = nil, uuid: String? = nil) {
        self.pk = pk
        self.uuid = uuid.map { $0.lowercased() }
    }

    /// True when both references name the same Document by pk or by uuid.
    public func matches(_ other: DocumentRef) -> Bool {
        if let pk, let otherPK = other.pk, pk == otherPK { return true }
        if let uuid, let otherUUID = other.uuid, uuid == otherUUID { return true }
        return false
    }

    /// A stable key for storage: the uuid when known, else `pk:<n>`.
    public var storageKey: String {
        if let uuid { return uuid }
        if let pk { return "pk:\(pk)" }
        return "unknown"
    }

    /// Whether the reference names anything at all.
    public var isEmpty: Bool { pk == nil && uuid == nil }

    /// The uuid and the pk, whichever are known.
    public var description: String {
        switch (pk, uuid) {
        case let (pk?, uuid?): "\(uuid) (pk \(pk))"
        case let (nil, uuid?): uuid
        case let (pk?, nil): "pk \(pk)"
        case (nil, nil): "unidentified document"
        }
    }
}
