import BookWatchCore
import BookWatchStore
import Foundation

/// The aligned table `bookwatch status` prints, with totals by state.
struct StatusTable {
    let records: [BookRecord]
    let totals: [BookPhase: Int]
    let now: Date
    /// ANSI colours for states (only on a terminal without NO_COLOR).
    var colour = false
    /// Unicode block characters for the progress bars (a terminal); `#`/`.` otherwise.
    var unicode = false

    static let headers = ["UUID", "STATE", "DOCS", "PROGRESS", "GEN", "LAST WEBHOOK", "LAST POLL", "NEXT POLL", "ANALYTICS", "LABEL"]
    static let stateColumn = 1
    static let barWidth = 10

    /// `[#####.....]`: documents finished out of those known; empty when none is known yet.
    /// Text from outside (a Book's name from Ocrolus) with control characters shown as `?`, so
    /// a newline or an escape sequence cannot break the table or the terminal.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { CharacterSet.controlCharacters.contains($0) ? "?" : $0 }))
    }

    static func bar(finished: Int, total: Int, unicode: Bool) -> String {
        guard total > 0 else { return "" }
        let filled = min(barWidth, Int((Double(finished) / Double(total) * Double(barWidth)).rounded(.down)))
        let (full, empty) = unicode ? ("█", "░") : ("#", ".")
        return "[" + String(repeating: full, count: filled) + String(repeating: empty, count: barWidth - filled) + "]"
    }

    static func ansi(_ phase: BookPhase) -> String {
        switch phase {
        case .tracking: "\u{1B}[2m"  // dim
        case .processing: "\u{1B}[33m"  // yellow
        case .retrieving: "\u{1B}[36m"  // cyan
        case .complete: "\u{1B}[32m"  // green
        case .failed: "\u{1B}[31;1m"  // bold red
        case .deleted: "\u{1B}[90m"  // grey
        }
    }

    func rows() -> [[String]] {
        records.map { record in
            let machine = record.machine
            return [
                machine.uuid.rawValue,
                machine.phase.rawValue,
                "\(record.documentsFinished)/\(record.documentsTotal)",
                Self.bar(finished: record.documentsFinished, total: record.documentsTotal, unicode: unicode),
                String(machine.generation),
                RelativeTime.describe(machine.lastWebhookAt, now: now),
                RelativeTime.describe(machine.lastSnapshotAt, now: now),
                record.pendingPollReason != nil && record.nextPollAt.map({ $0 <= now }) == true
                    ? "now (\(record.pendingPollReason?.rawValue ?? ""))"
                    : RelativeTime.describe(record.nextPollAt, now: now),
                analyticsCell(record),
                // The operator's label, else Ocrolus's name of the Book.
                Self.printable(record.label ?? record.name ?? "-"),
            ]
        }
    }

    func analyticsCell(_ record: BookRecord) -> String {
        guard let job = record.analytics else { return "-" }
        var cell = job.state.rawValue
        if job.attempts > 0 { cell += " (\(job.attempts) attempt\(job.attempts == 1 ? "" : "s"))" }
        if let error = job.lastError, job.state == .failed { cell += ": \(error)" }
        return cell
    }

    func render() -> String {
        var output = ""
        if records.isEmpty {
            output += "no books tracked\n"
        } else {
            let table = [Self.headers] + rows()
            let widths = Self.headers.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
            for (rowIndex, row) in table.enumerated() {
                let cells = row.enumerated().map { index, cell in
                    let padded = index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                    // Colour after padding, so escape codes do not upset the alignment.
                    if colour, rowIndex > 0, index == Self.stateColumn, let phase = BookPhase(rawValue: cell) {
                        return Self.ansi(phase) + padded + "\u{1B}[0m"
                    }
                    return padded
                }
                output += cells.joined(separator: "  ") + "\n"
            }
        }
        output += totalsLine() + "\n"
        return output
    }

    func totalsLine() -> String {
        let count = totals.values.reduce(0, +)
        let parts = BookPhase.allCases.compactMap { phase in totals[phase].map { "\($0) \(phase.rawValue)" } }
        let noun = count == 1 ? "book" : "books"
        return parts.isEmpty ? "total: 0 books" : "total: \(count) \(noun): " + parts.joined(separator: ", ")
    }
}

/// "3m ago", "in 5m", "-": how far a time is from now, in the largest sensible unit.
enum RelativeTime {
    static func describe(_ date: Date?, now: Date) -> String {
        guard let date else { return "-" }
        let seconds = date.timeIntervalSince(now)
        let magnitude = abs(seconds)
        if magnitude < 1 { return "now" }
        let amount: String
        switch magnitude {
        case ..<60: amount = "\(Int(magnitude))s"
        case ..<3600: amount = "\(Int(magnitude / 60))m"
        case ..<86_400: amount = "\(Int(magnitude / 3600))h"
        default: amount = "\(Int(magnitude / 86_400))d"
        }
        return seconds < 0 ? "\(amount) ago" : "in \(amount)"
    }
}
