import BookWatchCore
import BookWatchStore
import Foundation

/// `bookwatch status UUID`: one Book described the way `kubectl describe` does, from what the
/// database holds: its state, documents (with rejection reasons), each generation's job and what
/// was retrieved, the last webhooks and polls, the next poll and why.
struct BookDescription {
    let record: BookRecord
    let jobs: [AnalyticsJobSummary]
    let results: [AnalyticsResult]
    let deliveries: [(delivery: StoredDelivery, outcome: String?)]
    let now: Date

    /// Reads what the description shows.
    static func read(_ uuid: BookUUID, from store: any BookStore, now: Date) async throws -> BookDescription? {
        guard let record = try await store.book(uuid) else { return nil }
        return BookDescription(
            record: record,
            jobs: try await store.analyticsJobs(of: uuid),
            results: try await store.analyticsResults(for: uuid, endpoint: nil),
            deliveries: try await store.recentDeliveries(about: uuid, limit: Self.deliveriesShown),
            now: now
        )
    }

    /// How many of the Book's newest webhooks are listed.
    static let deliveriesShown = 10

    func time(_ date: Date?) -> String {
        guard let date else { return "-" }
        return "\(BookStatusEntry.rfc3339(date)) (\(RelativeTime.describe(date, now: now)))"
    }

    /// Why the next poll is when it is.
    var nextPollReason: String {
        let machine = record.machine
        if let reason = record.pendingPollReason { return "asked for: \(reason.rawValue)" }
        guard record.nextPollAt != nil else { return machine.phase == .deleted ? "none: the Book is deleted" : "none scheduled" }
        switch machine.phase {
        case .tracking: return "first look"
        case .processing: return "documents still processing"
        case .retrieving: return "watching for a reopen while analytics are fetched"
        case .complete, .failed: return "watching for a reopen"
        case .deleted: return "a slow look for a Book seen deleted (about 1, 2, 4... maxima after it)"
        }
    }

    func render() -> String {
        let machine = record.machine
        var lines: [String] = []
        func field(_ name: String, _ value: String) { lines.append(name.padding(toLength: 14, withPad: " ", startingAt: 0) + value) }
        field("Book:", machine.uuid.rawValue)
        if let label = record.label { field("Label:", StatusTable.printable(label)) }
        if let name = record.name { field("Name:", StatusTable.printable(name)) }
        field("State:", "\(machine.phase.rawValue), generation \(machine.generation)")
        field("Ocrolus:", "pk \(machine.pk.map(String.init) ?? "-"), book status \(machine.bookStatus?.rawValue ?? "-")")
        if let reason = machine.failureReason { field("Failure:", reason) }
        if let doubt = machine.doubt {
            if machine.phase == .deleted, doubt.kind == .gone {
                field("Deleted:", "seen gone since \(time(doubt.since)); an answer showing the Book revives it")
            } else {
                field("Doubt:", "\(doubt.kind.rawValue) since \(time(doubt.since)); a second answer decides")
            }
        }
        field("Tracked:", machine.watchedSinceCreation ? "since its creation (track --new)" : "after its creation")
        field("Last poll:", time(machine.lastSnapshotAt))
        field("Last webhook:", time(machine.lastWebhookAt))
        field("Next poll:", "\(time(record.nextPollAt)): \(nextPollReason)")
        field("Finished:", time(machine.finishedAt))

        let documents = machine.documents
        lines.append("")
        lines.append("Documents (\(documents.count)):")
        if documents.isEmpty { lines.append("  none known yet") }
        let refWidth = max(8, documents.map { $0.ref.description.count }.max() ?? 0)
        if !documents.isEmpty {
            lines.append(
                "  " + "DOCUMENT".padding(toLength: refWidth, withPad: " ", startingAt: 0) + "  STATUS                 WEBHOOK SAID  REJECTION"
            )
        }
        for document in documents {
            let status = document.status?.rawValue ?? "(webhook only)"
            lines.append(
                "  " + document.ref.description.padding(toLength: refWidth, withPad: " ", startingAt: 0) + "  "
                    + status.padding(toLength: 23, withPad: " ", startingAt: 0)
                    + (document.hint?.rawValue ?? "-").padding(toLength: 14, withPad: " ", startingAt: 0)
                    + (document.rejectionReason ?? "")
            )
        }

        lines.append("")
        lines.append("Generations:")
        if jobs.isEmpty { lines.append("  none finished yet") }
        for job in jobs {
            let endpoints = results.filter { $0.generation == job.generation }.map(\.endpoint).sorted()
            var line = "  \(job.generation): job \(job.state.rawValue), \(job.attempts) attempt(s)"
            if let retrieved = job.retrievedAt { line += ", retrieved \(time(retrieved))" }
            if !endpoints.isEmpty { line += ", stored \(endpoints.joined(separator: ", "))" }
            if let due = job.dueAt, job.state == .pending || job.state == .running { line += ", next try \(time(due))" }
            lines.append(line)
            if let error = job.lastError { lines.append("     last error: \(error)") }
        }

        lines.append("")
        lines.append("Webhooks (newest \(Self.deliveriesShown)):")
        if deliveries.isEmpty { lines.append("  none stored (or pruned)") }
        for (stored, outcome) in deliveries {
            let event = stored.delivery.event.isEmpty ? "(thin body)" : stored.delivery.event
            lines.append(
                "  \(BookStatusEntry.rfc3339(stored.delivery.receivedAt))  " + event.padding(toLength: 32, withPad: " ", startingAt: 0)
                    + (outcome ?? "pending").padding(toLength: 10, withPad: " ", startingAt: 0)
                    + (stored.delivery.authenticated ? "verified" : "unverified")
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
