import BookWatchClocks
import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI

/// A retrieval's writes: the pages of a paged endpoint, and what Ocrolus already answered, kept
/// through a shutdown (`Watcher+Analytics.swift` works the jobs and calls these).
extension Watcher {
    /// Every page of a paged endpoint (`enriched_txns`), each stored under the claim as it
    /// arrives, from the first one not stored yet (a retry after a kill, a lost lease or a 425
    /// asks only for the rest); then the pages as the endpoint's one result. False when a page
    /// was not ready (the job waits). A result cut short is never stored: a page repeating the
    /// one before (a server ignoring the offset) or more than `AnalyticsPaging.maximumPages`
    /// pages or `maximumBytes` fail the job for good, with the reason.
    func fetchPages(_ job: ClaimedJob, _ endpoint: AnalyticsEndpoint, log: Logger) async throws -> Bool {
        let limit = AnalyticsPaging.defaultLimit
        let label = "analytics/\(endpoint.rawValue)"
        var pages = try await store.analyticsPages(job.bookUUID, generation: job.generation, endpoint: endpoint.rawValue)
        var bytes = pages.reduce(0) { $0 + $1.body.count }
        var lastDigest = pages.last.flatMap { AnalyticsPaging.itemsDigest($0.body) }  // read once per page, not per comparison
        while true {
            var offset = 0
            if let last = pages.last {
                guard case .next(let next) = AnalyticsPaging.end(of: last.body, offset: last.offset) else { break }
                offset = next
            }
            guard pages.count < AnalyticsPaging.maximumPages, bytes < AnalyticsPaging.maximumBytes else {
                throw OcrolusError(.permanent, endpoint: label, message: "more than \(pages.count) pages (\(bytes) bytes) and no end in sight")
            }
            guard let body = try await fetchReady(job, endpoint, page: AnalyticsPageRequest(offset: offset, limit: limit), log: log) else {
                return false
            }
            let digest = AnalyticsPaging.itemsDigest(body)
            if let last = pages.last, let digest, digest == lastDigest {
                throw OcrolusError(
                    .permanent,
                    endpoint: label,
                    message: "the page at offset \(offset) repeats the page at \(last.offset): Ocrolus ignored the offset"
                )
            }
            let page = AnalyticsPage(
                bookUUID: job.bookUUID,
                generation: job.generation,
                endpoint: endpoint.rawValue,
                offset: offset,
                body: body,
                retrievedAt: clock.now()
            )
            try await keepAnswered { [store] in try await store.storeAnalyticsPage(page, claim: job.claim) }
            pages.append(page)
            bytes += body.count
            lastDigest = digest
        }
        let result = AnalyticsResult(
            bookUUID: job.bookUUID,
            generation: job.generation,
            endpoint: endpoint.rawValue,
            body: AnalyticsPaging.assemble(endpoint: endpoint.rawValue, limit: limit, pages: pages.map(\.body)),
            retrievedAt: pages.last?.retrievedAt ?? clock.now()
        )
        try await keepAnswered { [store] in try await store.storeAnalyticsResult(result, claim: job.claim) }
        return true
    }

    /// Writes what Ocrolus has already answered 200 for in a task of its own, which a shutdown's
    /// cancellation does not reach: refused (GRDB refuses a cancelled task's writes), the answer
    /// would be lost and fetched again after the restart, a second 200 for the same generation.
    /// Shutdown waits for the write (at most the store's timeout), as it does for the inbox
    /// writer's queue; the claim's fence still applies, and what comes after it (the view after)
    /// stops on the cancellation as before.
    func keepAnswered(_ write: @escaping @Sendable () async throws -> Void) async throws {
        try await Task { try await write() }.value
    }
}
