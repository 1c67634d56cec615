import BookWatchCore
import BookWatchStore
import Foundation

/// The aligned table `bookwatch status` prints, with totals by state.
struct StatusTable {
    let records: [BookRecord]
    let totals: [BookPhase: Int]
    let now: Date

    static let headers = ["UUID", "STATE", "DOCS", "GEN", "LAST WEBHOOK", "LAST POLL", "NEXT POLL", "ANALYTICS"]

    func rows() -> [[String]] {
        records.map { record in
            let machine = record.machine
            return [
                machine.uuid.rawValue,
                machine.phase.rawValue,
                "\(record.documentsFinished)/\(record.documentsTotal)",
                String(machine.generation),
                RelativeTime.describe(machine.lastWebhookAt, now: now),
                RelativeTime.describe(machine.lastSnapshotAt, now: now),
                record.pendingPollReason != nil && record.nextPollAt.map({ $0 <= now }) == true
                    ? "now (\(record.pendingPollReason?.rawValue ?? ""))"
                    : RelativeTime.describe(record.nextPollAt, now: now),
                analyticsCell(record),
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
            for row in table {
                let cells = row.enumerated().map { index, cell in
                    index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
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
