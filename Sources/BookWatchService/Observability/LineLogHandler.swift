import Foundation
import Logging
import Synchronization

/// `--log-format`: `text` is one human-readable line per event; `json` one JSON object per line
/// (for Loki, Elasticsearch, `jq`).
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

/// A swift-log handler writing one line per event to standard error, with the event's metadata
/// (book_uuid, request_id, ...) as `key=value` pairs or JSON fields. Built explicitly by `serve`
/// (no global bootstrap), so tests can capture lines with `write`.
public struct LineLogHandler: LogHandler {
    /// The lowest level written.
    public var logLevel: Logger.Level
    /// Metadata added to every line.
    public var metadata: Logger.Metadata = [:]
    /// Metadata read at each event (task-local context).
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let format: LogFormat
    let write: @Sendable (String) -> Void
    let now: @Sendable () -> Date

    /// A handler writing `format` lines through `write`.
    public init(
        label: String,
        format: LogFormat,
        level: Logger.Level,
        now: @escaping @Sendable () -> Date = { Date() },
        write: @escaping @Sendable (String) -> Void = LineLogHandler.standardError
    ) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.now = now
        self.write = write
    }

    /// A logger with this handler.
    public static func logger(label: String, format: LogFormat, level: Logger.Level) -> Logger {
        Logger(label: label) { label in LineLogHandler(label: label, format: format, level: level) }
    }

    /// One metadata value.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes the event as one line.
    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        if let error = event.error { all["error"] = "\(error)" }
        write(render(level: event.level, message: "\(event.message)", metadata: all) + "\n")
    }

    func render(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        let time = Self.timestamp(now())
        switch format {
        case .text:
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.text($0.value))" }
            return ([time, level.rawValue, "\(label):", message] + pairs).joined(separator: " ")
        case .json:
            var object: [String: Any] = ["ts": time, "level": level.rawValue, "logger": label, "msg": message]
            for (key, value) in metadata where object[key] == nil { object[key] = Self.json(value) }
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
                return #"{"level":"error","msg":"unencodable log event"}"#
            }
            return String(decoding: data, as: UTF8.self)
        }
    }

    static func text(_ value: Logger.Metadata.Value) -> String {
        let raw = "\(value)"
        return raw.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) || raw.isEmpty
            ? "\"" + raw.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            : raw
    }

    static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): "\(convertible)"
        case .array(let values): values.map(json)
        case .dictionary(let values): values.mapValues(json)
        }
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    private static let standardErrorLock = Mutex(())

    /// Writes whole lines to standard error, one at a time.
    public static let standardError: @Sendable (String) -> Void = { line in
        standardErrorLock.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
    }
}
