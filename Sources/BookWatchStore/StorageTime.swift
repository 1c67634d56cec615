import Foundation

extension Date {
    /// Milliseconds since 1970, the storage form of every time column.
    package var storageMillis: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    /// The date of a time column.
    package init(storageMillis: Int64) { self.init(timeIntervalSince1970: Double(storageMillis) / 1000) }
}
