import BookWatchCore
import BookWatchSQLite
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Testing

@Suite struct SQLiteBookStoreTests {
    let uuid = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!
    let other = BookUUID("b79fb14b-1d2a-4e8e-8a3c-6f0d2c9e7a41")!
    let t0 = Date(timeIntervalSince1970: 1_774_000_000)

    func open(_ path: String) throws -> SQLiteBookStore {
        try SQLiteBookStore(path: path, schedule: PollSchedule(minimum: 60, maximum: 1800), random: { 0.5 })
    }

    func snapshot(_ status: BookStatus, _ docs: [(Int, DocumentStatus)]) -> BookInput {
        .snapshot(
            .present(
                pk: 71_400_892,
                status: status,
                documents: docs.map {
                    DocumentSnapshot(
                        ref: DocumentRef(pk: $0.0, uuid: "doc-\($0.0)"),
                        status: $0.1,
                        rejectionReason: $0.1 == .rejected ? "INVALID DOCUMENT" : nil
                    )
                }
            )
        )
    }

    @Test func walAndSynchronousFull() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir.file("db.sqlite"))
        #expect(try store.journalMode() == "wal")
        #expect(try store.writerSynchronousLevel() == 2)  // FULL
    }

    /// The totals (every scrape, `status`) and the processing count (the outage detector, every
    /// 10 s) are read on the partial index of tracked Books (the finished count on that of polled
    /// Books): through `books_state` they read every
    /// Book's row for `untracked_at` (the scrape's largest cost at 100k Books).
    @Test func theTotalsAndThePolledCountsReadOnlyPartialIndexes() async throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir.file("db.sqlite"))
        for step in [BookStatements.totals, BookStatements.processing] {
            let plan = try await store.queryPlan(step)
            #expect(plan.count == 1 && plan.allSatisfy { $0.contains("INDEX books_tracked_state") }, "\(plan)")
        }
        // The finished Books with a retention poll: the index of polled Books (its seek to the row is
        // deferred and never made: no column of the row is read).
        let plan = try await store.queryPlan(BookStatements.finishedPolled)
        #expect(plan.count == 1 && plan.allSatisfy { $0.contains("INDEX books_polled_state") }, "\(plan)")
    }

    /// An inline (simulation) store keeps the file's lock on its writer after its first write:
    /// what it reads, it reads there (a reader connection would wait out the busy timeout).
    @Test func anInlineStoreReadsOnItsWriterAfterItsFirstWrite() async throws {
        let dir = try TemporaryDirectory()
        let store = try SQLiteBookStore(path: dir.file("db.sqlite"), busyTimeout: 0.2, random: { 0.5 }, inline: true)
        _ = try await store.apply(.command(.track(.operator)), to: uuid, at: t0, options: .init())
        #expect(try store.journalMode() == "wal")
        #expect(try await store.book(uuid)?.machine.phase == .tracking)
        #expect(throws: StoreError.self) { try store.export() }
    }

    /// The count of changed rows moves with a write that changes a row and only then (the chaos
    /// search reads the store again only when it has moved).
    @Test func theChangedRowsCountMovesOnlyWhenARowChanges() async throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir.file("db.sqlite"))
        let start = try store.rowsChangedCount()
        _ = try await store.apply(.command(.track(.operator)), to: uuid, at: t0, options: .init())
        let tracked = try store.rowsChangedCount()
        #expect(tracked > start)
        let claimed = try await store.claimDuePolls(now: t0, limit: 10, lease: 60, excluding: [])
        #expect(claimed.count == 1)
        let afterClaim = try store.rowsChangedCount()
        #expect(afterClaim > tracked)
        let writes = store.activity.writesBegun
        #expect(try await store.claimDuePolls(now: t0, limit: 10, lease: 60, excluding: []).isEmpty)  // claimed already: nothing
        #expect(store.activity.writesBegun > writes, "a write transaction ran")
        #expect(try store.rowsChangedCount() == afterClaim, "and changed nothing")
    }

    @Test func trackCreatesABookDueForAPollNow() async throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir.file("db.sqlite"))
        let outcome = try #require(try await store.apply(.command(.track(.operator)), to: uuid, at: t0, options: .init()))
        #expect(outcome.created)
        #expect(outcome.nextPollAt == t0)
        let record = try #require(try await store.book(uuid))
        #expect(record.machine.phase == .tracking)
        #expect(record.pendingPollReason == .operator)
        #expect(record.nextPollAt == t0)
        // Tracking again is not a second creation.
        let again = try await store.apply(.command(.track(.operator)), to: uuid, at: t0, options: .init())
        #expect(again?.created == false)
        #expect(try await store.totals() == [.tracking: 1])
    }

    @Test func inputsOtherThanTrackDoNotCreateBooks() async throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir.file("db.sqlite"))
        let outcome = try await store.apply(.webhook(WebhookHint(event: .bookVerified)), to: uuid, at: t0, options: .init())
        #expect(outcome == nil)
        #expect(try await store.book(uuid) == nil)
    }

    @Test func aFinishedSnapshotOpensTheJobInTheSameTransaction() async throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir.file("db.sqlite"))
        _ = try await store.apply(.command(.track(.operator)), to: uuid, at: t0, options: .init())
        let outcome = try #require(
            try await store.apply(
                snapshot(.verified, [(1, .verificationComplete), (2, .rejected)]),
                to: uuid,
                at: t0,
                options: .init()
            )
        )
        #expect(outcome.actions.contains(.openAnalyticsJob(generation: 1)))
        // Retention cadence: the maximum less 10 % jitter at u = 0.5.
        #expect(outcome.nextPollAt == t0.addingTimeInterval(1710))
        let record = try #require(try await store.book(uuid))
        #expect(record.machine.phase == .retrieving)
        #expect(record.documentsTotal == 2)
        #expect(record.documentsFinished == 2)
        #expect(record.documentsFailed == 1)
        #expect(record.machine.pk == 71_400_892)
        #expect(
            record.analytics
                == AnalyticsJobSummary(
                    generation: 1,
                    state: .pending,
                    attempts: 0,
                    dueAt: t0,
                    retrievedAt: nil,
                    lastError: nil
                )
        )
        #expect(record.pendingPollReason == nil)
    }

    @Test func reopenAfterCloseKeepsEverything() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("db.sqlite")
        var expected: BookMachine
        do {
            let store = try open(path)
            _ = try await store.apply(.command(.track(.operator)), to: uuid, at: t0, options: .init())
            _ = try await store.apply(.command(.track(.operator)), to: other, at: t0, options: .init())
            _ = try await store.apply(
                snapshot(.verifying, [(1, .verificationComplete), (2, .processing)]),
                to: other,
                at: t0,
                options: .init()
            )
            _ = try await store.apply(
                .webhook(WebhookHint(event: .documentVerified, document: DocumentRef(pk: 1))),
                to: other,
                at: t0,
                options: .init()
            )
            _ = try await store.apply(snapshot(.verified, [(1, .verificationComplete)]), to: uuid, at: t0, options: .init())
            let result = AnalyticsResult(bookUUID: uuid, generation: 1, endpoint: "summary", body: Array("{\"ok\":1}".utf8), retrievedAt: t0)
            _ = try await store.apply(.analytics(generation: 1, .stored, JobReport(results: [result])), to: uuid, at: t0, options: .init())
            _ = try await store.appendToInbox(
                InboxDelivery(
                    requestID: "r-1",
                    receivedAt: t0,
                    bookUUID: uuid,
                    bookPK: nil,
                    event: "book.verified",
                    body: [1, 2, 3]
                )
            )
            expected = try #require(try await store.book(other)).machine
            try store.close()
        }
        let reopened = try open(path)
        #expect(try await reopened.totals() == [.complete: 1, .processing: 1])
        #expect(try await reopened.book(other)?.machine == expected)
        let complete = try #require(try await reopened.book(uuid))
        #expect(complete.machine.phase == .complete)
        #expect(complete.analytics?.state == .complete)
        #expect(complete.analytics?.retrievedAt == t0)
        #expect(try await reopened.analyticsResults(for: uuid, endpoint: nil).map(\.endpoint) == ["summary"])
        #expect(try await reopened.pendingInbox(limit: 10).map(\.delivery.requestID) == ["r-1"])
        #expect(try reopened.writerSynchronousLevel() == 2)
    }

    @Test func inboxDeduplicatesByRequestID() async throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir.file("db.sqlite"))
        let delivery = InboxDelivery(requestID: "req-1", receivedAt: t0, bookUUID: nil, bookPK: 7, event: "x", body: [])
        guard case .stored = try await store.appendToInbox(delivery) else {
            Issue.record("first delivery not stored")
            return
        }
        #expect(try await store.appendToInbox(delivery) == .duplicate)
        // Without a request id nothing can be deduplicated: both are stored.
        var anonymous = delivery
        anonymous.requestID = nil
        #expect(try await store.appendToInbox(anonymous) != .duplicate)
        #expect(try await store.appendToInbox(anonymous) != .duplicate)
        #expect(try await store.pendingInbox(limit: 10).count == 3)
    }

    @Test func untrackParksTheJobAndTrackResumesIt() async throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir.file("db.sqlite"))
        _ = try await store.apply(.command(.track(.operator)), to: uuid, at: t0, options: .init())
        _ = try await store.apply(snapshot(.verified, [(1, .completed)]), to: uuid, at: t0, options: .init())
        let outcome = try await store.apply(.command(.untrack), to: uuid, at: t0, options: .init())
        #expect(outcome?.actions == [.stopWatching])
        #expect(try await store.book(uuid) == nil)
        #expect(try await store.totals().isEmpty)
        // No job of an untracked Book is claimed.
        #expect(try await store.claimAnalyticsJob(owner: "w", now: t0.addingTimeInterval(1), lease: 60) == nil)
        // `track --new` on it is a plain track: it is looked at again, its job resumes.
        _ = try await store.apply(.command(.track(.created)), to: uuid, at: t0, options: .init())
        #expect(try await store.book(uuid)?.pendingPollReason == .operator)
        let confirmed = try await store.apply(snapshot(.verified, [(1, .completed)]), to: uuid, at: t0, options: .init())
        #expect(confirmed?.actions.first == .confirmAnalyticsJob(generation: 1))
        #expect(try await store.claimAnalyticsJob(owner: "w", now: t0.addingTimeInterval(1), lease: 60)?.generation == 1)
    }

    @Test func listingFiltersAndLimits() async throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir.file("db.sqlite"))
        _ = try await store.apply(.command(.track(.operator)), to: uuid, at: t0, options: .init())
        _ = try await store.apply(.command(.track(.operator)), to: other, at: t0, options: .init())
        _ = try await store.apply(snapshot(.verifying, [(1, .processing)]), to: other, at: t0, options: .init())
        #expect(try await store.books(state: nil, limit: nil).map(\.uuid) == [uuid, other])
        #expect(try await store.books(state: .processing, limit: nil).map(\.uuid) == [other])
        #expect(try await store.books(state: nil, limit: 1).map(\.uuid) == [uuid])
    }

    @Test func missingDirectoryIsATypedErrorNamingThePath() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("no/such/dir/db.sqlite")
        let error = #expect(throws: StoreError.self) { try open(path) }
        #expect(error?.kind == .missingDirectory)
        #expect(error?.description.contains(dir.file("no/such/dir")) == true)
        #expect(!FileManager.default.fileExists(atPath: dir.file("no")))
    }

    @Test func readOnlyDirectoryIsATypedErrorNamingThePath() throws {
        let dir = try TemporaryDirectory()
        let readOnly = try ReadOnlyDirectory(inside: dir.path)
        let path = readOnly.path + "/db.sqlite"
        let error = #expect(throws: StoreError.self) { try open(path) }
        #expect(error?.kind == .readOnly)
        #expect(error?.description.contains(path) == true)
    }

    @Test func aDirectoryInPlaceOfTheFileIsRefused() throws {
        let dir = try TemporaryDirectory()
        let error = #expect(throws: StoreError.self) { try open(dir.path) }
        #expect(error?.kind == .unavailable)
        #expect(error?.description.contains(dir.path) == true)
    }
}
