import BookWatchCore
import BookWatchStore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes stored analytics out of the database: one JSON file per (Book, generation, endpoint),
/// `UUID.gGENERATION.ENDPOINT.json`, holding `{"book_uuid", "generation", "endpoint",
/// "retrieved_at", "body"}` (the body as Ocrolus answered it).
///
/// A file appears whole or not at all (written to a temporary name in the same directory,
/// flushed, then hard-linked to its name, which fails rather than replace), and an existing file
/// is never rewritten: exporting again, from another replica or after a crash, only adds what is
/// missing. `bookwatch analytics export` and `serve --export-dir` both use it.
public struct ResultExporter: Sendable {
    /// Where files go.
    public let directory: String

    /// An exporter into `directory`, which must exist and be writable.
    public init(directory: String) throws(ExportError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ExportError("\(directory): no such directory")
        }
        guard access(directory, W_OK | X_OK) == 0 else { throw ExportError("\(directory): not writable") }
        self.directory = directory
    }

    /// Why an export failed.
    public struct ExportError: Error, CustomStringConvertible, Equatable {
        /// What went wrong, naming the path.
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The file name of a result (the endpoint's characters outside `[A-Za-z0-9_-]` become `_`).
    public static func fileName(_ result: AnalyticsResult) -> String {
        let endpoint = String(result.endpoint.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") ? $0 : "_" })
        return "\(result.bookUUID).g\(result.generation).\(endpoint).json"
    }

    /// One result as the JSON document both `bookwatch analytics` and the exported files hold: a
    /// body that is not JSON is kept as a JSON string.
    public static func document(_ result: AnalyticsResult) -> String {
        let body = String(decoding: result.body, as: UTF8.self)
        let isJSON = (try? JSONSerialization.jsonObject(with: Data(result.body), options: [.fragmentsAllowed])) != nil
        let encodedBody = isJSON ? body : ((try? JSONEncoder().encode(body)).map { String(decoding: $0, as: UTF8.self) } ?? "null")
        return
            #"{"book_uuid":"\#(result.bookUUID)","generation":\#(result.generation),"endpoint":"\#(result.endpoint)","retrieved_at":"\#(BookStatusEntry.rfc3339(result.retrievedAt))","body":\#(encodedBody)}"#
    }

    /// Removes temporary files an export killed mid-write left (`.NAME.PID.RAND.tmp`, untouched for
    /// `olderThan`: a live export holds its file for milliseconds, and a replica on another host
    /// may be writing one now, so age decides, not the process id); answers how many went.
    @discardableResult
    public func sweepAbandoned(olderThan age: TimeInterval = 3600, now: Date = Date()) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var removed = 0
        for name in names where Self.isTemporaryName(name) {
            let path = directory + "/" + name
            // Regular files only (a link is not followed: its own type is read), untouched for `age`.
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                attributes[.type] as? FileAttributeType == .typeRegular,
                let modified = attributes[.modificationDate] as? Date, now.timeIntervalSince(modified) > age
            else { continue }
            if unlink(path) == 0 { removed += 1 }
        }
        return removed
    }

    /// A name `export` gives its temporary files: `.UUID.gN.ENDPOINT.json.PID.RAND.tmp`, nothing else.
    static func isTemporaryName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 8, parts[0].isEmpty, parts[7] == "tmp", parts[4] == "json", BookUUID(String(parts[1])) != nil,
            parts[2].first == "g", Int(parts[2].dropFirst()) != nil, !parts[3].isEmpty, UInt32(parts[5]) != nil, UInt32(parts[6]) != nil
        else { return false }
        return parts[3].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// Writes `result` unless its file exists; answers whether it wrote it.
    @discardableResult
    public func export(_ result: AnalyticsResult) throws(ExportError) -> Bool {
        let name = Self.fileName(result)
        let path = directory + "/" + name
        if FileManager.default.fileExists(atPath: path) { return false }
        let temporary = directory + "/.\(name).\(getpid()).\(UInt32.random(in: .min ... .max)).tmp"
        let bytes = Array((Self.document(result) + "\n").utf8)
        // Owner and group only: these are a borrower's financial data.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ExportError("\(temporary): \(String(cString: strerror(errno)))") }
        defer { unlink(temporary) }
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw ExportError("\(temporary): \(reason)")
            }
            written += n
        }
        let synced = fsync(fd) == 0
        close(fd)
        guard synced else { throw ExportError("\(temporary): fsync failed: \(String(cString: strerror(errno)))") }
        // link(2) never replaces: a file that appeared meanwhile (another replica) is kept.
        if link(temporary, path) != 0 {
            if errno == EEXIST { return false }
            throw ExportError("\(path): \(String(cString: strerror(errno)))")
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
        return true
    }
}
