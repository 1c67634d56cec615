/// A Book's status string from Ocrolus (`book_status`), kept verbatim when unknown.
///
/// `VERIFIED` and the older spelling `BOOK_COMPLETE` both mean "every document finished".
public enum BookStatus: Hashable, Sendable, CustomStringConvertible {
    case created
    case upload
    case verifying
    case verified
    case deleted
    /// A status string this build does not know; treated as "still in progress".
    case unknown(String)

    /// Parses a status as Ocrolus spells it (`BOOK_COMPLETE` reads as verified); an unknown one is kept verbatim.
    public init(_ raw: String) {
        switch raw.uppercased() {
        case "CREATED": self = .created
        case "UPLOAD", "UPLOADED", "UPLOADING": self = .upload
        case "VERIFYING": self = .verifying
        case "VERIFIED", "BOOK_COMPLETE": self = .verified
        case "DELETED": self = .deleted
        default: self = .unknown(raw)
        }
    }

    /// The canonical string, or the original one for `.unknown`.
    public var rawValue: String {
        switch self {
        case .created: "CREATED"
        case .upload: "UPLOAD"
        case .verifying: "VERIFYING"
        case .verified: "VERIFIED"
        case .deleted: "DELETED"
        case .unknown(let raw): raw
        }
    }

    /// The status as Ocrolus spells it.
    public var description: String { rawValue }
}
