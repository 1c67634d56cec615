import Foundation

/// Exponential backoff with full jitter, capped, with `Retry-After` as a lower bound (pure).
///
/// Attempt `n` (1-based) waits a uniform draw in `[0, min(cap, base * 2^(n-1))]`, and never less
/// than a `Retry-After` the server sent.
public struct RetryPolicy: Sendable, Equatable {
    /// The first wait's ceiling.
    public var base: TimeInterval
    /// The longest wait.
    public var cap: TimeInterval
    /// Attempts in all, the first included.
    public var maxAttempts: Int

    /// A policy of `maxAttempts` attempts, waits doubling from `base` up to `cap`.
    public init(base: TimeInterval = 1, cap: TimeInterval = 60, maxAttempts: Int = 4) {
        self.base = base
        self.cap = max(base, cap)
        self.maxAttempts = max(1, maxAttempts)
    }

    /// The wait before retry number `attempt` (1 = the first retry), given a draw in `0..<1`.
    public func delay(afterAttempt attempt: Int, retryAfter: TimeInterval? = nil, unitRandom: Double) -> TimeInterval {
        let exponent = Double(min(max(attempt - 1, 0), 62))
        let ceiling = min(cap, base * pow(2, exponent))
        let jittered = min(max(unitRandom, 0), 1) * ceiling
        return max(jittered, retryAfter ?? 0)
    }
}

/// `Retry-After` in both of its forms: delta-seconds, or an HTTP date (RFC 9110 IMF-fixdate,
/// also the obsolete RFC 850 and asctime forms).
public enum RetryAfter {
    /// The longest wait honoured: a server asking for more (or a clock far off) is clamped, so
    /// one bad header cannot stall every outgoing call for hours.
    public static let maximum: TimeInterval = 600

    /// Seconds to wait from `now` (at most `maximum`), or nil when absent or unreadable.
    public static func parse(_ value: String?, now: Date) -> TimeInterval? {
        parseUnclamped(value, now: now).map { min($0, maximum) }
    }

    static func parseUnclamped(_ value: String?, now: Date) -> TimeInterval? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            guard value.utf8.count <= 9, let seconds = Int(value) else { return nil }
            return TimeInterval(seconds)
        }
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: value) {
                return max(0, date.timeIntervalSince(now))
            }
        }
        return nil
    }

    /// The IMF-fixdate form of `date` (for the simulator).
    public static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}
