import BookWatchCore
import BookWatchPostgres
import BookWatchSQLite
import BookWatchStore
import BookWatchTestSupport
import Foundation
import Testing

/// The same cases against every store (`StoreKind.available`): what the watcher relies on,
/// including what several replicas sharing one database rely on (claims, leases, once-only inbox
/// rows, row-locked transitions).
@Suite struct StoreConformanceTests {
    @Test(arguments: StoreKind.available)
    func aDeliveryKeepsTheHintAdmissionDecoded(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            var kept = F.delivery("with-hint")
            kept.hint = WebhookHint(
                event: .bookVerified,
                bookStatus: .verified,
                listedDocuments: [DocumentSnapshot(ref: DocumentRef(pk: 1), status: .completed)]
            )
            _ = try await store.appendToInbox(batch: [kept, F.delivery("without")])
            let claimed = try await store.claimInbox(owner: "w", now: F.t0, limit: 10, lease: 60)
            #expect(claimed.map(\.delivery.hint) == [kept.hint, nil])
        }
    }

    /// A call made by a cancelled task (shutdown) ends in a `CancellationError` on both stores,
    /// not in a store error that callers would log and count as a failure.
    @Test(arguments: StoreKind.available)
    func aCancelledCallerGetsACancellationNotAStoreError(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let call = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await store.appendToInbox(F.delivery("cancelled"))
            }
            await #expect(throws: CancellationError.self) { try await call.value }
            let stored = try await store.inboxContains(requestID: "cancelled")
            #expect(!stored)
        }
    }

    /// A group commit's batch answers each delivery in order: a request id already stored, or
    /// earlier in the same batch, is a duplicate and stores nothing; deliveries without a request
    /// id are each stored; every id answered is its own row's, with every field kept.
    @Test(arguments: StoreKind.available)
    func aBatchAnswersEachDeliveryInOrderWithItsOwnRow(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            guard case .stored(let earlier) = try await store.appendToInbox(F.delivery("old")) else {
                Issue.record("the first delivery was not stored")
                return
            }
            var anonymous = F.delivery("unused", at: F.t0.plus(5))
            anonymous.requestID = nil
            anonymous.bookPK = 77
            anonymous.authenticated = true
            anonymous.hint = WebhookHint(event: .bookVerified, bookStatus: .verified)
            var otherAnonymous = anonymous
            otherAnonymous.bookPK = 78
            otherAnonymous.remoteAddress = nil
            otherAnonymous.authenticated = false
            let batch = [F.delivery("new1"), F.delivery("old"), anonymous, F.delivery("new1"), anonymous, F.delivery("new2"), otherAnonymous]
            let outcomes = try await store.appendToInbox(batch: batch)
            #expect(outcomes.count == 7)
            #expect(outcomes[1] == .duplicate && outcomes[3] == .duplicate)
            let storedIDs = [0, 2, 4, 5, 6].compactMap { index -> Int64? in
                if case .stored(let id) = outcomes[index] { id } else { nil }
            }
            #expect(storedIDs.count == 5 && Set(storedIDs).count == 5)  // the two identical anonymous rows too
            #expect(storedIDs == storedIDs.sorted() && storedIDs.allSatisfy { $0 > earlier })  // ids are the inbox's order
            let claimed = try await store.claimInbox(owner: "w", now: F.t0.plus(10), limit: 10, lease: 60)
            let byID = Dictionary(uniqueKeysWithValues: claimed.map { ($0.id, $0.delivery) })
            #expect(claimed.count == 6)
            #expect(zip(storedIDs, [0, 2, 4, 5, 6]).allSatisfy { byID[$0.0] == batch[$0.1] })
        }
    }

    /// More documents than one INSERT writes, more Books than one IN list reads: both are split
    /// so no statement nears a database's bind limit (PostgreSQL's protocol fails past 65,535).
    @Test(arguments: StoreKind.available)
    func longListsAreSplitAcrossStatements(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let count = SQLQuery.rowsPerStatement * 2 + 7
            let documents = (1...count).map { DocumentSnapshot(ref: DocumentRef(pk: $0), status: $0 % 2 == 0 ? .completed : .processing) }
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(.present(pk: 1, status: .verifying, documents: documents)), to: F.uuid, at: F.t0, options: .init())
            let record = try #require(try await store.book(F.uuid))
            #expect(record.machine.documents.map(\.ref.pk) == (1...count).map { $0 })
            #expect(record.documentsFinished == count / 2)

            let books = SQLQuery.valuesPerList + 5
            for index in 1..<books {
                let uuid = try #require(BookUUID(String(format: "00000000-0000-4000-8000-%012d", index)))
                _ = try await store.apply(.command(.track(.created)), to: uuid, at: F.t0, options: .init())
            }
            let all = try await store.books(state: nil, limit: nil)
            #expect(all.count == books)
            #expect(all.first { $0.uuid == F.uuid }?.documentsTotal == count)
        }
    }

    /// The operator's label and Ocrolus's name live beside the Book, survive its transitions, and
    /// `books(label:)` filters on the label.
    @Test(arguments: StoreKind.available)
    func labelsAndNamesRoundTrip(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.command(.track(.operator)), to: F.other, at: F.t0, options: .init())
            try await store.setLabel("loan-7", of: F.uuid)
            _ = try await store.apply(.snapshot(F.verifying, PollAnswer(bookName: "Acme Bakery")), to: F.uuid, at: F.t0.plus(1), options: .init())
            var record = try #require(try await store.book(F.uuid))
            #expect(record.label == "loan-7" && record.name == "Acme Bakery")
            // A later answer without a name keeps it; a new label replaces the old.
            _ = try await store.apply(.snapshot(F.verifying), to: F.uuid, at: F.t0.plus(2), options: .init())
            try await store.setLabel("loan-8", of: F.uuid)
            record = try #require(try await store.book(F.uuid))
            #expect(record.label == "loan-8" && record.name == "Acme Bakery")
            #expect(try await store.books(state: nil, label: "loan-8", limit: nil).map(\.uuid) == [F.uuid])
            #expect(try await store.books(state: nil, label: "loan-7", limit: nil).isEmpty)
            #expect(try await store.books(state: nil, limit: nil).count == 2)
            #expect(try await store.book(F.other)?.label == nil)
            // A webhook's book_name: only an authenticated one, only where no name is known yet.
            func named(_ name: String, authenticated: Bool = true) -> BookInput {
                .webhook(WebhookHint(event: .bookClassified, authenticated: authenticated, bookName: name), HintDelivery())
            }
            _ = try await store.apply(named("Forged", authenticated: false), to: F.other, at: F.t0.plus(3), options: .init())
            #expect(try await store.book(F.other)?.name == nil)
            _ = try await store.apply(named("Other Co"), to: F.other, at: F.t0.plus(4), options: .init())
            _ = try await store.apply(named("Acme Old Name"), to: F.uuid, at: F.t0.plus(4), options: .init())
            #expect(try await store.book(F.other)?.name == "Other Co")
            #expect(try await store.book(F.uuid)?.name == "Acme Bakery")
        }
    }

    /// `track` of a batch: one transaction, labels set, a repeat inside the batch and a Book
    /// already tracked answer false; an untracked one is tracked again (its row resumed, so not
    /// "created" either).
    @Test(arguments: StoreKind.available)
    func aBatchIsTrackedInOneTransaction(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.book(1), at: F.t0, options: .init())
            _ = try await store.apply(.command(.track(.operator)), to: F.book(2), at: F.t0, options: .init())
            _ = try await store.apply(.command(.untrack), to: F.book(2), at: F.t0, options: .init())
            let created = try await store.track(
                [(F.book(1), "a"), (F.book(2), nil), (F.book(3), "c"), (F.book(3), "c2")],
                source: .operator,
                at: F.t0.plus(1)
            )
            #expect(created == [false, false, true, false])
            #expect(try await store.book(F.book(1))?.label == "a")
            #expect(try await store.book(F.book(2))?.machine.phase == .tracking)
            #expect(try await store.book(F.book(3))?.label == "c2")
            #expect(try await store.books(state: nil, limit: nil).count == 3)
        }
    }

    /// A transient error is the job's last error (`status UUID`) until the job completes.
    @Test(arguments: StoreKind.available)
    func aTransientErrorIsTheJobsLastErrorUntilItCompletes(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            let first = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0, lease: 60))
            let retry = JobReport(claim: first.claim, retryAt: F.t0.plus(10))
            _ = try await store.apply(.analytics(generation: 1, .transientError("HTTP 503"), retry), to: F.uuid, at: F.t0.plus(1), options: .init())
            #expect(try await store.book(F.uuid)?.analytics?.lastError == "HTTP 503")
            #expect(try await store.analyticsJobs(of: F.uuid).map(\.lastError) == ["HTTP 503"])
            let second = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0.plus(10), lease: 60))
            let result = AnalyticsResult(bookUUID: F.uuid, generation: 1, endpoint: "summary", body: Array("{}".utf8), retrievedAt: F.t0.plus(11))
            try await store.storeAnalyticsResult(result, claim: second.claim)
            _ = try await store.apply(
                .analytics(generation: 1, .stored, JobReport(claim: second.claim)),
                to: F.uuid,
                at: F.t0.plus(12),
                options: .init()
            )
            let job = try #require(try await store.book(F.uuid)?.analytics)
            #expect(job.state == .complete && job.lastError == nil && job.attempts == 1)
        }
    }

    /// What is known of a finish's announcement is kept between transitions (the loss estimate's
    /// book-level evidence).
    @Test(arguments: StoreKind.available)
    func finishEvidenceRoundTrips(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.verifying), to: F.uuid, at: F.t0.plus(1), options: .init())
            #expect(try await store.book(F.uuid)?.machine.finishEvidence == nil)
            _ = try await store.apply(F.bookVerified, to: F.uuid, at: F.t0.plus(2), options: .init())
            #expect(try await store.book(F.uuid)?.machine.finishEvidence == .announced)
            let finished = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0.plus(3), options: .init())
            #expect(finished?.actions.contains(.bookFinishCoverage(announced: true)) == true)
            #expect(try await store.book(F.uuid)?.machine.finishEvidence == nil)

            _ = try await store.apply(.command(.track(.operator)), to: F.other, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.verifying), to: F.other, at: F.t0.plus(1), options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.other, at: F.t0.plus(2), options: .init())
            #expect(try await store.book(F.other)?.machine.finishEvidence == .unannounced(since: F.t0.plus(2)))
        }
    }

    @Test(arguments: StoreKind.available)
    func transitionsRoundTrip(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let tracked = try #require(try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init()))
            #expect(tracked.created && tracked.actions == [.pollNow(.operator)])
            var record = try #require(try await store.book(F.uuid))
            #expect(record.machine.phase == .tracking && record.pendingPollReason == .operator && record.nextPollAt == F.t0)

            _ = try await store.apply(.snapshot(F.verifying), to: F.uuid, at: F.t0.plus(1), options: .init())
            record = try #require(try await store.book(F.uuid))
            #expect(record.machine.phase == .processing && record.machine.pk == 1 && record.machine.bookStatus == .verifying)
            #expect(record.documentsTotal == 2 && record.documentsFinished == 1)
            #expect(record.machine.documents.map(\.ref) == [DocumentRef(pk: 1, uuid: "doc-1"), DocumentRef(pk: 2, uuid: "doc-2")])
            #expect(record.pendingPollReason == nil && record.nextPollAt.map { $0 > F.t0.plus(1) } == true)
            #expect(try await store.totals() == [.processing: 1])
            #expect(try await store.books(state: .processing, limit: 10).map(\.uuid) == [F.uuid])
            #expect(try await store.books(state: .complete, limit: 10).isEmpty)
            #expect(try await store.uuid(forPK: 1) == F.uuid)
            #expect(record.machine.watchedSinceCreation == false)
            // A Book tracked at creation keeps that across transitions.
            _ = try await store.apply(.command(.track(.created)), to: F.other, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.verifying), to: F.other, at: F.t0.plus(1), options: .init())
            #expect(try await store.book(F.other)?.machine.watchedSinceCreation == true)
            _ = try await store.apply(.command(.untrack), to: F.other, at: F.t0.plus(2), options: .init())
            // Only `track` creates a Book.
            #expect(try await store.apply(F.bookVerified, to: F.other, at: F.t0, options: .init()) == nil)
            #expect(try await store.book(F.other) == nil)
            // Untracking deletes it.
            _ = try await store.apply(.command(.untrack), to: F.uuid, at: F.t0.plus(2), options: .init())
            #expect(try await store.book(F.uuid) == nil)
            #expect(try await store.totals().isEmpty)
        }
    }

    /// A Book untracked while retrieving and tracked again days later: its job waits for the
    /// track's view and does not count the days it was untracked in its age (it was given up at
    /// its first claim, chaos seed 4626); the 10 s before the untrack still count.
    @Test(arguments: StoreKind.available)
    func aJobTrackedAgainDoesNotCountItsUntrackedTime(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await StoreFixtures.openJob(in: store, book: F.uuid, at: F.t0)
            _ = try await store.apply(.command(.untrack), to: F.uuid, at: F.t0.plus(10), options: .init())
            let back = F.t0.plus(200 * 3600)
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: back, options: .init())
            #expect(try await store.book(F.uuid)?.machine.phase == .retrieving)
            // The track's view confirms the finish; the job is due and claimed.
            _ = try await store.apply(StoreFixtures.finished(pk: 1), to: F.uuid, at: back.plus(1), options: .init())
            let job = try #require(try await store.claimAnalyticsJob(owner: "w", now: back.plus(3600), lease: 60))
            #expect(job.generation == 1, "the same job, confirmed")
            #expect(job.openedAt == back.plus(-10), "opened \(job.openedAt.timeIntervalSince(F.t0)) s after the first track")
        }
    }

    /// The chaos search's safety check reads every tracked Book in one statement: it must say what
    /// `books` says of their phase, generation, next poll and newest job, untracked ones left out.
    @Test(arguments: StoreKind.available)
    func theWatchedBooksAreWhatTheBookListSays(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let history = try #require(store as? any JobHistoryReading)
            let grown = F.grown
            // Two generations of jobs (the first superseded by a reopen), one Book with none, one untracked.
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            let first = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0, lease: 60))
            try await store.storeAnalyticsResult(
                AnalyticsResult(bookUUID: F.uuid, generation: 1, endpoint: "summary", body: [1], retrievedAt: F.t0),
                claim: first.claim
            )
            _ = try await store.apply(.snapshot(grown, PollAnswer(takenAt: F.t0.plus(10))), to: F.uuid, at: F.t0.plus(10), options: .init())
            _ = try await store.apply(.snapshot(grown, PollAnswer(takenAt: F.t0.plus(20))), to: F.uuid, at: F.t0.plus(20), options: .init())
            _ = try await store.apply(.command(.track(.operator)), to: F.other, at: F.t0, options: .init())
            _ = try await store.apply(.command(.track(.operator)), to: F.book(3), at: F.t0, options: .init())
            _ = try await store.apply(.command(.untrack), to: F.book(3), at: F.t0.plus(5), options: .init())
            let jobs = try await history.jobHistory(F.uuid).map(\.generation)
            #expect(jobs.count == 2, "jobs of generations \(jobs)")
            let watched = try await history.watchedBooks()
            let listed = try await store.books(state: nil, limit: nil)
            #expect(watched.map(\.uuid) == listed.map(\.uuid))
            let tracked: Set<BookUUID> = [F.uuid, F.other]
            #expect(Set(watched.map(\.uuid)) == tracked)
            for (book, record) in zip(watched, listed) {
                let job: AnalyticsJobSummary? = record.analytics
                #expect(book.phase == record.machine.phase)
                #expect(book.generation == record.machine.generation)
                #expect(book.nextPollAt == record.nextPollAt)
                #expect(book.job?.generation == job?.generation)
                #expect(book.job?.state == job?.state)
                #expect(book.job?.dueAt == job?.dueAt)
            }
            let newest: Int? = watched.first { $0.uuid == F.uuid }?.job?.generation
            #expect(newest == jobs.max())
            let none: WatchedBook.Job? = watched.first { $0.uuid == F.other }?.job
            #expect(none == nil)
        }
    }

    /// A replica whose clock runs behind the one that opened the job tracks the Book again: the
    /// job's opening never moves earlier (its age would count time it never waited, and it
    /// would be given up that much sooner). From an adversarial read.
    @Test(arguments: StoreKind.available)
    func aJobTrackedAgainByAReplicaBehindKeepsItsOpening(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let ahead = F.t0.plus(600)  // the opening replica's clock
            try await StoreFixtures.openJob(in: store, book: F.uuid, at: ahead)
            _ = try await store.apply(.command(.untrack), to: F.uuid, at: ahead.plus(10), options: .init())
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0.plus(20), options: .init())
            _ = try await store.apply(StoreFixtures.finished(pk: 1), to: F.uuid, at: F.t0.plus(21), options: .init())
            let job = try #require(try await store.claimAnalyticsJob(owner: "w", now: ahead.plus(3600), lease: 60))
            #expect(job.openedAt >= ahead, "opened \(job.openedAt.timeIntervalSince(ahead)) s after the first opening")
        }
    }

    @Test(arguments: StoreKind.available)
    func aFinishedGenerationIsRetrievedOnceWhateverTheRace(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            let opened = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            #expect(opened?.actions.contains(.openAnalyticsJob(generation: 1)) == true)
            // Eight workers (as if on several replicas) race for the job.
            let claims = try await withThrowingTaskGroup(of: Int.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        guard let job = try await store.claimAnalyticsJob(owner: "w\(worker)", now: F.t0, lease: 120) else { return 0 }
                        let result = AnalyticsResult(
                            bookUUID: job.bookUUID,
                            generation: job.generation,
                            endpoint: "summary",
                            body: Array("{\"worker\":\(worker)}".utf8),
                            retrievedAt: F.t0
                        )
                        _ = try await store.apply(
                            .analytics(generation: job.generation, .stored, JobReport(results: [result])),
                            to: job.bookUUID,
                            at: F.t0,
                            options: TransitionOptions()
                        )
                        return 1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(claims == 1)
            #expect(try await store.analyticsResults(for: F.uuid, endpoint: nil).count == 1)
            #expect(try await store.pendingNotifications(limit: 10).map(\.idempotencyKey) == ["\(F.uuid):1"])
            let record = try #require(try await store.book(F.uuid))
            #expect(record.machine.phase == .complete && record.analytics?.state == .complete && record.analytics?.retrievedAt == F.t0)
            let counts = try await store.analyticsCounts()
            #expect(counts.jobs == ["complete": 1] && counts.results == 1)
        }
    }

    @Test(arguments: StoreKind.available)
    func analyticsLeasesExpireAndAreRearmed(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            #expect(try await store.nextJobDueAt() == F.t0)
            let job = try #require(try await store.claimAnalyticsJob(owner: "w1", now: F.t0, lease: 120))
            #expect(job.attempts == 0 && job.leaseExpiresAt == F.t0.plus(120) && job.openedAt == F.t0)
            #expect(try await store.claimAnalyticsJob(owner: "w2", now: F.t0.plus(1), lease: 120) == nil)
            #expect(try await store.book(F.uuid)?.analytics?.state == .running)
            #expect(try await store.rearmExpiredLeases(now: F.t0.plus(60)) == 0)
            #expect(try await store.rearmExpiredLeases(now: F.t0.plus(121)) == 1)
            let again = try #require(try await store.claimAnalyticsJob(owner: "w2", now: F.t0.plus(121), lease: 120))
            #expect(again.attempts == 0 && again.claim.token == job.claim.token + 1)
            // The first worker's lease lapsed: its outcome is refused and changes nothing.
            let late = JobReport(claim: job.claim, retryAt: F.t0.plus(500))
            await #expect {
                try await store.apply(.analytics(generation: 1, .stored, late), to: F.uuid, at: F.t0.plus(122), options: .init())
            } throws: {
                ($0 as? StoreError)?.isLostClaim == true
            }
            #expect(try await store.book(F.uuid)?.machine.phase == .retrieving)
            #expect(try await store.book(F.uuid)?.analytics?.state == .running)
            // A 425 puts it back with its due time and is no attempt; a real error is one.
            var fenced = JobReport(claim: again.claim, retryAt: F.t0.plus(200))
            _ = try await store.apply(.analytics(generation: 1, .notReady, fenced), to: F.uuid, at: F.t0.plus(122), options: .init())
            #expect(try await store.nextJobDueAt() == F.t0.plus(200))
            #expect(try await store.claimAnalyticsJob(owner: "w3", now: F.t0.plus(199), lease: 120) == nil)
            let third = try #require(try await store.claimAnalyticsJob(owner: "w3", now: F.t0.plus(200), lease: 120))
            #expect(third.attempts == 0)
            fenced.claim = third.claim
            fenced.retryAt = F.t0.plus(210)
            _ = try await store.apply(.analytics(generation: 1, .transientError("503"), fenced), to: F.uuid, at: F.t0.plus(201), options: .init())
            #expect(try await store.claimAnalyticsJob(owner: "w3", now: F.t0.plus(210), lease: 120)?.attempts == 1)
        }
    }

    /// Trusting webhooks: a finished body opens the job with no poll requested; the finished Book's
    /// polls are spaced by its age; turning untrusted pulls them in to the maximum.
    @Test(arguments: StoreKind.available)
    func aTrustedFinishedBodyOpensTheJobAndSpacesOutFinishedPolls(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let trusted = TransitionOptions(webhooksTrusted: true)
            let body = BookInput.webhook(
                WebhookHint(
                    event: .bookVerified,
                    listedDocuments: [
                        DocumentSnapshot(ref: DocumentRef(uuid: "doc-1"), status: .completed),
                        DocumentSnapshot(ref: DocumentRef(uuid: "doc-2"), status: .rejected),
                    ],
                    authenticated: true
                )
            )
            for book in [F.uuid, F.other] {
                _ = try await store.apply(.command(.track(.created)), to: book, at: F.t0, options: .init())
                // Both documents announced: a body may stand in only for documents seen before.
                for doc in ["doc-1", "doc-2"] {
                    _ = try await store.apply(
                        .webhook(WebhookHint(event: .documentUploaded, document: DocumentRef(uuid: doc))),
                        to: book,
                        at: F.t0.plus(1),
                        options: .init()
                    )
                }
            }
            // Untrusted, the same body asks for a poll and opens nothing.
            _ = try await store.apply(body, to: F.other, at: F.t0.plus(10), options: .init())
            #expect(try await store.book(F.other)?.pendingPollReason == .webhookHint)
            #expect(try await store.claimAnalyticsJob(owner: "w", now: F.t0.plus(10), lease: 60) == nil)

            _ = try await store.apply(body, to: F.uuid, at: F.t0.plus(10), options: trusted)
            let record = try #require(try await store.book(F.uuid))
            #expect(record.machine.phase == .retrieving && record.pendingPollReason == nil)
            #expect(record.nextPollAt == F.t0.plus(10 + 4 * 1800))  // first retention poll: four maxima (trustedRetentionStart)
            let job = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0.plus(10), lease: 60))
            #expect(job.bookUUID == F.uuid && job.generation == 1)
            _ = try await store.apply(.analytics(generation: 1, .stored), to: F.uuid, at: F.t0.plus(20), options: trusted)
            // A retention poll four hours after the finish sets the next one four hours later.
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0.plus(10 + 4 * 3600), options: trusted)
            #expect(try await store.book(F.uuid)?.nextPollAt == F.t0.plus(10 + 8 * 3600))
            // Webhooks turn untrusted: the far poll comes within the maximum.
            let now = F.t0.plus(5 * 3600)
            #expect(try await store.tightenPolls(now: now) == 1)
            let moved = try #require(try await store.book(F.uuid)?.nextPollAt)
            #expect(moved >= now && moved < now.plus(1800))
        }
    }

    @Test(arguments: StoreKind.available)
    func notReadyAnalyticsBringTheRetentionPollForwardButNeverDelayIt(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            #expect(try await store.book(F.uuid)?.nextPollAt == F.t0.plus(1800))  // retention: the maximum
            let lossy = TransitionOptions(webhooksSilent: true)
            let waiting = JobReport(retryAt: F.t0.plus(30))
            _ = try await store.apply(.analytics(generation: 1, .notReady, waiting), to: F.uuid, at: F.t0.plus(10), options: lossy)
            #expect(try await store.book(F.uuid)?.nextPollAt == F.t0.plus(70))  // active while waiting: minimum (draw 0)
            // A later 425 does not push it out again.
            _ = try await store.apply(.analytics(generation: 1, .notReady, waiting), to: F.uuid, at: F.t0.plus(40), options: lossy)
            #expect(try await store.book(F.uuid)?.nextPollAt == F.t0.plus(70))
        }
    }

    @Test(arguments: StoreKind.available)
    func startupRecoveryTakesOnlyWhatIsItsOwn(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            _ = try #require(try await store.claimAnalyticsJob(owner: "replica-a", now: F.t0, lease: 120))
            let restart = F.t0.plus(5)
            if store is SQLiteBookStore {
                // One node owns the file: every running job is a previous run's, re-armed at once.
                #expect(try await store.recoverLeases(owner: "replica-b", now: restart) == 1)
            } else {
                // Shared: replica-a is alive and holds its lease; only its own restart takes it back.
                #expect(try await store.recoverLeases(owner: "replica-b", now: restart) == 0)
                #expect(try await store.claimAnalyticsJob(owner: "replica-b", now: restart, lease: 120) == nil)
                #expect(try await store.recoverLeases(owner: "replica-a", now: restart) == 1)
            }
            #expect(try await store.claimAnalyticsJob(owner: "replica-b", now: restart, lease: 120) != nil)
        }
    }

    @Test(arguments: StoreKind.available)
    func aDuePollIsClaimedByOneReplicaAtATime(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            for index in 0..<20 {
                _ = try await store.apply(.command(.track(.operator)), to: F.book(index), at: F.t0, options: .init())
            }
            let claimed = try await withThrowingTaskGroup(of: [DuePoll].self) { group in
                for _ in 0..<4 {
                    group.addTask { try await store.claimDuePolls(now: F.t0, limit: 8, lease: 120, excluding: []) }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(claimed.count == 20 && Set(claimed.map(\.bookUUID)).count == 20)
            #expect(claimed.allSatisfy { $0.reason == .operator && $0.claimedAt == F.t0 && $0.dueAt == F.t0 })
            // Claimed: not due again while the lease holds...
            #expect(try await store.claimDuePolls(now: F.t0.plus(119), limit: 50, lease: 120, excluding: []).isEmpty)
            #expect(try await store.nextPollAt() == F.t0.plus(120))
            // ...and due again, still urgent, once it lapsed (the replica died mid-poll).
            let retaken = try await store.claimDuePolls(now: F.t0.plus(121), limit: 50, lease: 120, excluding: [])
            #expect(retaken.count == 20 && retaken.allSatisfy { $0.reason == .operator })
        }
    }

    @Test(arguments: StoreKind.available)
    func urgentPollsComeFirstAndExcludedBooksWait(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.created)), to: F.other, at: F.t0.plus(-1000), options: .init())
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            let first = try await store.claimDuePolls(now: F.t0.plus(100), limit: 1, lease: 120, excluding: [])
            #expect(first.map(\.bookUUID) == [F.uuid] && first.first?.reason == .operator)
            #expect(try await store.claimDuePolls(now: F.t0.plus(100), limit: 5, lease: 120, excluding: [F.other]).isEmpty)
            let scheduled = try await store.claimDuePolls(now: F.t0.plus(100), limit: 5, lease: 120, excluding: [])
            #expect(scheduled.map(\.bookUUID) == [F.other] && scheduled.first?.reason == nil)
        }
    }

    @Test(arguments: StoreKind.available)
    func aSnapshotEndsItsClaimAndAHintDuringThePollKeepsTheBookUrgent(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            let poll = try #require(try await store.claimDuePolls(now: F.t0, limit: 1, lease: 120, excluding: []).first)
            var taken = PollAnswer(takenAt: F.t0.plus(1), claim: poll.claimedAt)
            _ = try await store.apply(.snapshot(F.verifying, taken), to: F.uuid, at: F.t0.plus(1), options: .init())
            var record = try #require(try await store.book(F.uuid))
            let scheduled = try #require(record.nextPollAt)
            #expect(record.pendingPollReason == nil && scheduled > F.t0.plus(1) && scheduled < F.t0.plus(120))

            // The next poll is claimed; a webhook asks for a poll while it is in flight.
            let second = try #require(try await store.claimDuePolls(now: scheduled, limit: 1, lease: 120, excluding: []).first)
            try await store.requestPoll(F.uuid, at: scheduled.plus(1), reason: .webhookHint)
            taken.claim = second.claimedAt
            taken.takenAt = scheduled.plus(2)
            _ = try await store.apply(.snapshot(F.verifying, taken), to: F.uuid, at: scheduled.plus(2), options: .init())
            // The in-flight poll answered an older question: the hint's poll stays due.
            record = try #require(try await store.book(F.uuid))
            #expect(record.pendingPollReason == .webhookHint && record.nextPollAt == scheduled.plus(1))
            #expect(try await store.claimDuePolls(now: scheduled.plus(2), limit: 1, lease: 120, excluding: []).first?.reason == .webhookHint)
        }
    }

    /// Replica A's answer arrived first but commits second: it must not roll the Book back to
    /// "verifying", which would look like a reopen and open a second generation of the same one.
    @Test(arguments: StoreKind.available)
    func aSlowerReplicasOlderSnapshotIsDropped(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            let newer = PollAnswer(takenAt: F.t0.plus(20))
            _ = try await store.apply(.snapshot(F.finished, newer), to: F.uuid, at: F.t0.plus(21), options: .init())
            #expect(try await store.book(F.uuid)?.machine.phase == .retrieving)
            let older = PollAnswer(takenAt: F.t0.plus(10))
            let dropped = try #require(try await store.apply(.snapshot(F.verifying, older), to: F.uuid, at: F.t0.plus(22), options: .init()))
            #expect(dropped.actions.isEmpty)
            let record = try #require(try await store.book(F.uuid))
            #expect(record.machine.phase == .retrieving && record.analytics?.state == .pending && record.analytics?.generation == 1)
        }
    }

    /// Auto-track: a hint about a Book with no row tracks it and applies the hint in one
    /// transaction, with its inbox row's mark; never over a tombstone, never without the option.
    @Test(arguments: StoreKind.available)
    func autoTrackingTracksAnUnknownBookAndAppliesItsHintInOneTransaction(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.appendToInbox(batch: [F.delivery("a1"), F.delivery("a2"), F.delivery("a3")])
            let ids = try await store.claimInbox(owner: "w", now: F.t0, limit: 10, lease: 120).map(\.id).sorted()
            var delivery = HintDelivery(inboxRow: ids[0])
            #expect(try await store.apply(F.uploaded(9, delivery), to: F.uuid, at: F.t0, options: .init()) == nil)  // not without the option
            #expect(try await store.book(F.uuid) == nil)
            delivery.trackUnknown = true
            let outcome = try #require(try await store.apply(F.uploaded(9, delivery), to: F.uuid, at: F.t0, options: .init()))
            #expect(outcome.created)
            #expect(outcome.machine.documents.map(\.ref.pk) == [9])  // tracked with its hint applied
            #expect(outcome.nextPollAt != nil)
            #expect(try await store.book(F.uuid)?.machine.documents.map(\.ref.pk) == [9])
            #expect(try await store.markProcessed(ids[0], at: F.t0.plus(1), outcome: .ignored) == false)  // marked with it
            // A second hint with the option applies to the Book as it is (not a second creation).
            let again = HintDelivery(inboxRow: ids[1], trackUnknown: true)
            #expect(try await store.apply(F.uploaded(10, again), to: F.uuid, at: F.t0.plus(2), options: .init())?.created == false)
            // An untracked Book (a tombstone) is never tracked again this way.
            _ = try await store.apply(.command(.untrack), to: F.uuid, at: F.t0.plus(3), options: .init())
            let afterUntrack = HintDelivery(inboxRow: ids[2], trackUnknown: true)
            #expect(try await store.apply(F.uploaded(11, afterUntrack), to: F.uuid, at: F.t0.plus(4), options: .init()) == nil)
            #expect(try await store.isUntracked(F.uuid))
            #expect(try await store.markProcessed(ids[2], at: F.t0.plus(5), outcome: .untracked) == true)  // left for the caller
        }
    }

    /// The scale benchmark's fill writes the same database on both stores (same seed, same mix),
    /// readable like real rows, with nothing due at its `now`. Twenty Books a transaction: a clean-clone
    /// CI run, every suite at once on two cores, once took more than the 10 s operation timeout
    /// over a transaction of 100 on PostgreSQL (the rows do not depend on the batching).
    @Test(arguments: StoreKind.available)
    func theBenchmarkFillWritesTheSameMixOnEitherStore(_ kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let store = try #require(opened as? any SQLStatementStore)
            let summary = try await store.fillForBenchmark(books: 300, documentsPerBook: 4, now: F.t0, seed: 7, booksPerTransaction: 20)
            #expect(summary.books == 300)
            // The seed's mix, either store.
            #expect(summary.byState == [.complete: 217, .processing: 57, .tracking: 13, .retrieving: 4, .failed: 5, .deleted: 4])
            #expect(try await store.totals() == summary.byState)
            #expect(try await store.documentCounts().values.reduce(0, +) == summary.documents)
            #expect(try await store.duePolls(now: F.t0, limit: 10).isEmpty)
            #expect(try await store.duePolls(now: F.t0.plus(1800), limit: 10).count == 10)
            let complete = try await store.books(state: .complete, limit: 3)
            #expect(complete.allSatisfy { $0.analytics?.state == .complete && $0.documentsFinished == $0.documentsTotal })
            #expect(try await store.analyticsCounts().results == summary.byState[.complete])
        }
    }

    /// A round's marks in one transaction: each row marked once, whoever marked it first; the
    /// answer names only the rows this call marked, and marked rows are never claimed again.
    @Test(arguments: StoreKind.available)
    func aBatchOfMarksMarksEachRowOnce(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.appendToInbox(batch: (0..<6).map { F.delivery("m\($0)") })
            let ids = try await store.claimInbox(owner: "w", now: F.t0, limit: 10, lease: 60).map(\.id).sorted()
            #expect(try await store.markProcessed(ids[1], at: F.t0, outcome: .ignored))  // marked elsewhere first
            #expect(try await store.markProcessed(batch: [], owner: "w", at: F.t0).isEmpty)
            let marks = [
                InboxMark(id: ids[0], outcome: .ignored), InboxMark(id: ids[1], outcome: .untracked),
                InboxMark(id: ids[2], outcome: .unresolved(detail: "gone")), InboxMark(id: ids[3], outcome: .gaveUp(attempts: 60)),
                InboxMark(id: 999_999, outcome: .ignored),
            ]
            #expect(try await store.markProcessed(batch: marks, owner: "w", at: F.t0.plus(1)) == [ids[0], ids[2], ids[3]])
            #expect(try await store.markProcessed(batch: marks, owner: "w", at: F.t0.plus(2)).isEmpty)
            #expect(try await !store.markProcessed(ids[2], at: F.t0.plus(3), outcome: .ignored))
            // Each row keeps its own outcome; the first mark of a row wins.
            let outcomes = Dictionary(
                uniqueKeysWithValues: try await store.recentDeliveries(about: F.uuid, limit: 10).map { ($0.delivery.id, $0.outcome) }
            )
            #expect(outcomes[ids[0]] == "ignored")
            #expect(outcomes[ids[1]] == "ignored")
            #expect(outcomes[ids[2]] == "unresolved: gone")
            #expect(outcomes[ids[3]] == "gave up after 60 attempts")
            #expect(outcomes[ids[4]] == .some(nil))
            // After the lease, only the rows never marked are claimed again.
            let again = try await store.claimInbox(owner: "w2", now: F.t0.plus(61), limit: 10, lease: 60)
            #expect(again.map(\.id).sorted() == [ids[4], ids[5]])
            // A mark held past the lease is left to the replica that claimed the row since: its
            // decision is the newer one (it may have seen the Book tracked in between).
            #expect(try await store.markProcessed(batch: [InboxMark(id: ids[4], outcome: .ignored)], owner: "w", at: F.t0.plus(62)).isEmpty)
            #expect(try await store.markProcessed(batch: [InboxMark(id: ids[4], outcome: .untracked)], owner: "w2", at: F.t0.plus(63)) == [ids[4]])
            // Nor a row the newer claim deferred for a retry (claimed by nobody now): the retry
            // decides it (a helper's adversary case: auto-track off, the Book tracked in between,
            // the stale `ignored` would have lost its hint).
            try await store.deferInbox(ids[5], owner: "w2", until: F.t0.plus(70))
            #expect(try await store.markProcessed(batch: [InboxMark(id: ids[5], outcome: .ignored)], owner: "w", at: F.t0.plus(64)).isEmpty)
            #expect(try await store.claimInbox(owner: "w3", now: F.t0.plus(71), limit: 10, lease: 60).map(\.id) == [ids[5]])
        }
    }

    @Test(arguments: StoreKind.available)
    func inboxRowsAreClaimedByOneWorkerAndProcessedOnce(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let outcomes = try await store.appendToInbox(batch: (0..<30).map { F.delivery("r\($0)") })
            #expect(outcomes.allSatisfy { if case .stored = $0 { true } else { false } })
            #expect(try await store.appendToInbox(F.delivery("r7")) == .duplicate)
            #expect(try await store.inboxContains(requestID: "r29"))
            #expect(try await !store.inboxContains(requestID: "r30"))
            let claimed = try await withThrowingTaskGroup(of: [StoredDelivery].self) { group in
                for worker in 0..<3 {
                    group.addTask { try await store.claimInbox(owner: "w\(worker)", now: F.t0, limit: 16, lease: 120) }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(claimed.count == 30 && Set(claimed.map(\.id)).count == 30)
            #expect(claimed.first { $0.delivery.requestID == "r3" }?.delivery == F.delivery("r3"))
            #expect(try await store.claimInbox(owner: "w9", now: F.t0.plus(60), limit: 50, lease: 120).isEmpty)
            let ids = claimed.map(\.id).sorted()

            // A hint for a Book not tracked yet leaves its row alone (the watcher tracks the Book
            // and applies the hint again); then it commits with its row's mark, once.
            #expect(try await store.apply(F.uploaded(9, HintDelivery(inboxRow: ids[0])), to: F.uuid, at: F.t0, options: .init()) == nil)
            _ = try await store.apply(.command(.track(.created)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(F.uploaded(9, HintDelivery(inboxRow: ids[0])), to: F.uuid, at: F.t0.plus(1), options: .init())
            await #expect(throws: StoreError.self) {
                _ = try await store.apply(F.uploaded(10, HintDelivery(inboxRow: ids[0])), to: F.uuid, at: F.t0.plus(2), options: .init())
            }
            #expect(try await store.book(F.uuid)?.machine.documents.map(\.ref.pk) == [9])  // the second hint changed nothing
            #expect(try await store.markProcessed(ids[0], at: F.t0.plus(3), outcome: .applied) == false)
            #expect(try await store.markProcessed(ids[1], at: F.t0.plus(3), outcome: .ignored) == true)
            #expect(try await store.markProcessed(ids[1], at: F.t0.plus(3), outcome: .ignored) == false)
            // Released rows are claimable at once; the others when their lease lapses.
            try await store.releaseInbox([ids[2]])
            #expect(try await store.claimInbox(owner: "w9", now: F.t0.plus(61), limit: 50, lease: 120).map(\.id) == [ids[2]])
            let lapsed = try await store.claimInbox(owner: "w9", now: F.t0.plus(121), limit: 50, lease: 120)
            #expect(lapsed.map(\.id) == Array(ids[3...]))
            #expect(try await store.gauges(overdueBefore: F.t0).inboxPending == 28)
        }
    }

    @Test(arguments: StoreKind.available)
    func concurrentTransitionsOfOneBookLoseNothing(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.created)), to: F.uuid, at: F.t0, options: .init())
            try await withThrowingTaskGroup(of: Void.self) { group in
                for pk in 1...16 {
                    group.addTask { _ = try await store.apply(F.uploaded(pk), to: F.uuid, at: F.t0.plus(1), options: .init()) }
                }
                try await group.waitForAll()
            }
            let pks = try #require(try await store.book(F.uuid)).machine.documents.compactMap(\.ref.pk)
            #expect(Set(pks) == Set(1...16) && pks.count == 16)
        }
    }

    @Test(arguments: StoreKind.available)
    func aNewBookTrackedByManyReplicasAtOnceIsCreatedOnce(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let created = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await store.apply(.command(.track(.webhook)), to: F.uuid, at: F.t0, options: .init())?.created ?? false
                    }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(created == 1)
            #expect(try await store.totals() == [.tracking: 1])
        }
    }

    /// The view after (chaos search): results fetched for a generation that a reopen then
    /// superseded may be the next generation's, so they go with the supersession; a deletion
    /// supersedes too, and keeps them (there is no next generation to fetch them again).
    @Test(arguments: StoreKind.available)
    func aReopenDeletesTheSupersededGenerationsResultsADeletionKeepsThem(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let grown = F.grown
            for uuid in [F.uuid, F.other] {
                _ = try await store.apply(.command(.track(.operator)), to: uuid, at: F.t0, options: .init())
                _ = try await store.apply(.snapshot(F.finished), to: uuid, at: F.t0, options: .init())
                let job = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0, lease: 60))
                try await store.storeAnalyticsResult(
                    AnalyticsResult(bookUUID: job.bookUUID, generation: 1, endpoint: "summary", body: [1], retrievedAt: F.t0),
                    claim: job.claim
                )
            }
            let reopened = try #require(
                try await store.apply(
                    .snapshot(grown, PollAnswer(takenAt: F.t0.plus(10))),
                    to: F.uuid,
                    at: F.t0.plus(10),
                    options: .init()
                )
            )
            #expect(reopened.machine.generation == 2 && reopened.actions.contains(.supersedeAnalyticsJob(generation: 1)))
            #expect(try await store.analyticsResults(for: F.uuid, endpoint: nil).isEmpty)
            // Gone, said twice a gap apart: the job is superseded, the results stay.
            _ = try await store.apply(.snapshot(.gone, PollAnswer(takenAt: F.t0.plus(10))), to: F.other, at: F.t0.plus(10), options: .init())
            let gone = try #require(
                try await store.apply(
                    .snapshot(.gone, PollAnswer(takenAt: F.t0.plus(100))),
                    to: F.other,
                    at: F.t0.plus(100),
                    options: .init()
                )
            )
            #expect(gone.machine.phase == .deleted && gone.actions.contains(.supersedeAnalyticsJob(generation: 1)))
            #expect(try await store.analyticsResults(for: F.other, endpoint: nil).map(\.generation) == [1])
        }
    }

    @Test(arguments: StoreKind.available)
    func resultsAreStoredOnlyUnderTheLiveJobsClaimOncePerGenerationAndEndpoint(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            let job = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0, lease: 60))
            let result = AnalyticsResult(bookUUID: F.uuid, generation: 1, endpoint: "summary", body: [0, 1, 2, 255], retrievedAt: F.t0)
            try await store.storeAnalyticsResult(result, claim: job.claim)
            // Stored once: a second copy is kept out without an error (a retry after a lost answer).
            try await store.storeAnalyticsResult(
                AnalyticsResult(bookUUID: F.uuid, generation: 1, endpoint: "summary", body: [7], retrievedAt: F.t0.plus(1)),
                claim: job.claim
            )
            #expect(try await store.analyticsResults(for: F.uuid, endpoint: nil) == [result])
            // Another claim (a stale token), or a generation with no live job, stores nothing.
            let stale = JobClaim(owner: "w", token: job.claim.token - 1)
            let other = AnalyticsResult(bookUUID: F.uuid, generation: 1, endpoint: "income", body: [9], retrievedAt: F.t0)
            await #expect { try await store.storeAnalyticsResult(other, claim: stale) } throws: { ($0 as? StoreError)?.isLostClaim == true }
            let next = AnalyticsResult(bookUUID: F.uuid, generation: 2, endpoint: "summary", body: [9], retrievedAt: F.t0)
            await #expect { try await store.storeAnalyticsResult(next, claim: job.claim) } throws: { ($0 as? StoreError)?.isLostClaim == true }
            #expect(try await store.storedEndpoints(F.uuid, generation: 1) == ["summary"])
            #expect(try await store.analyticsResults(for: F.uuid, endpoint: "summary").map(\.generation) == [1])
        }
    }

    @Test(arguments: StoreKind.available)
    func pagesAreStoredUnderTheClaimOnceEachAndGoWithTheResultOrTheGeneration(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            let job = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0, lease: 60))
            func page(_ offset: Int, _ body: [UInt8], generation: Int = 1) -> AnalyticsPage {
                AnalyticsPage(bookUUID: F.uuid, generation: generation, endpoint: "enriched_txns", offset: offset, body: body, retrievedAt: F.t0)
            }
            try await store.storeAnalyticsPage(page(1000, [2]), claim: job.claim)
            try await store.storeAnalyticsPage(page(0, [1, 255]), claim: job.claim)
            try await store.storeAnalyticsPage(page(0, [9]), claim: job.claim)  // kept out: the first copy stays
            #expect(try await store.analyticsPages(F.uuid, generation: 1, endpoint: "enriched_txns") == [page(0, [1, 255]), page(1000, [2])])
            let stale = JobClaim(owner: "w", token: job.claim.token - 1)
            await #expect { try await store.storeAnalyticsPage(page(2000, [3]), claim: stale) } throws: { ($0 as? StoreError)?.isLostClaim == true }
            await #expect { try await store.storeAnalyticsPage(page(0, [3], generation: 2), claim: job.claim) } throws: {
                ($0 as? StoreError)?.isLostClaim == true
            }
            #expect(try await store.analyticsPages(F.uuid, generation: 1, endpoint: "enriched_txns").count == 2)
            // Discarded only under the claim (a 425 midway: fetched again from the first page),
            // and only that endpoint's.
            try await store.storeAnalyticsPage(
                AnalyticsPage(bookUUID: F.uuid, generation: 1, endpoint: "kept", offset: 0, body: [7], retrievedAt: F.t0),
                claim: job.claim
            )
            await #expect { try await store.discardAnalyticsPages(F.uuid, generation: 1, endpoint: "enriched_txns", claim: stale) } throws: {
                ($0 as? StoreError)?.isLostClaim == true
            }
            #expect(try await store.analyticsPages(F.uuid, generation: 1, endpoint: "enriched_txns").count == 2)
            try await store.discardAnalyticsPages(F.uuid, generation: 1, endpoint: "enriched_txns", claim: job.claim)
            #expect(try await store.analyticsPages(F.uuid, generation: 1, endpoint: "enriched_txns").isEmpty)
            #expect(try await store.analyticsPages(F.uuid, generation: 1, endpoint: "kept").count == 1)
            try await store.storeAnalyticsPage(page(1000, [2]), claim: job.claim)
            try await store.storeAnalyticsPage(page(0, [1, 255]), claim: job.claim)
            // The endpoint's result replaces its pages, in one transaction.
            let result = AnalyticsResult(bookUUID: F.uuid, generation: 1, endpoint: "enriched_txns", body: [1, 255, 2], retrievedAt: F.t0)
            try await store.storeAnalyticsResult(result, claim: job.claim)
            #expect(try await store.analyticsPages(F.uuid, generation: 1, endpoint: "enriched_txns").isEmpty)
            #expect(try await store.storedEndpoints(F.uuid, generation: 1) == ["enriched_txns"])
            // Pages of a generation a reopen supersedes go with it.
            try await store.storeAnalyticsPage(
                AnalyticsPage(bookUUID: F.uuid, generation: 1, endpoint: "other", offset: 0, body: [4], retrievedAt: F.t0),
                claim: job.claim
            )
            let reopened = BookSnapshot.present(
                pk: 1,
                status: .verifying,
                documents: [
                    DocumentSnapshot(ref: DocumentRef(pk: 1, uuid: "doc-1"), status: .completed),
                    DocumentSnapshot(ref: DocumentRef(pk: 3, uuid: "doc-3"), status: .processing),
                ]
            )
            _ = try await store.apply(.snapshot(reopened), to: F.uuid, at: F.t0.plus(1), options: .init())
            #expect(try await store.book(F.uuid)?.machine.generation == 2)
            #expect(try await store.analyticsPages(F.uuid, generation: 1, endpoint: "other").isEmpty)
            // Pages no live job will finish (a deletion supersedes the job, keeping what was
            // stored) go at the next prune; a running job's stay.
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0.plus(2), options: .init())
            let second = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0.plus(2), lease: 60))
            #expect(second.generation == 2)
            try await store.storeAnalyticsPage(page(0, [5], generation: 2), claim: second.claim)
            _ = try await store.prune(before: F.t0.plus(3), limit: 100)
            #expect(try await store.analyticsPages(F.uuid, generation: 2, endpoint: "enriched_txns").count == 1)
            _ = try await store.apply(.snapshot(.gone), to: F.uuid, at: F.t0.plus(3), options: .init())
            _ = try await store.apply(.snapshot(.gone, PollAnswer(takenAt: F.t0.plus(200))), to: F.uuid, at: F.t0.plus(200), options: .init())
            #expect(try await store.book(F.uuid)?.machine.phase == .deleted)
            _ = try await store.prune(before: F.t0.plus(3), limit: 100)
            #expect(try await store.analyticsPages(F.uuid, generation: 2, endpoint: "enriched_txns").isEmpty)
        }
    }

    @Test(arguments: StoreKind.available)
    func notificationsAndGaugesReadBackWhatWasWritten(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.command(.track(.operator)), to: F.other, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.analytics(generation: 1, .stored), to: F.uuid, at: F.t0.plus(1), options: .init())
            let pending = try await store.pendingNotifications(limit: 10)
            #expect(pending.map(\.idempotencyKey) == ["\(F.uuid):1"])
            try await store.recordNotification(pending[0], at: F.t0.plus(2), error: "exit 1")
            #expect(try await store.pendingNotifications(limit: 10).first?.attempts == 1)
            try await store.recordNotification(pending[0], at: F.t0.plus(3), error: nil)
            #expect(try await store.pendingNotifications(limit: 10).isEmpty)

            let gauges = try await store.gauges(overdueBefore: F.t0.plus(10))
            #expect(gauges.books == [.complete: 1, .tracking: 1])
            #expect(try await store.documentCounts() == [.succeeded: 1, .failed: 1])
            #expect(gauges.pollsOverdue == 1)  // F.other's operator poll, due at t0
            try await store.probeWritable(at: F.t0)
        }
    }

    @Test(arguments: StoreKind.available)
    func aRetrievalIsHandedOnByOneReplicaAtATime(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.analytics(generation: 1, .stored), to: F.uuid, at: F.t0, options: .init())
            let claims = try await withThrowingTaskGroup(of: PendingNotification?.self) { group in
                for replica in 0..<4 { group.addTask { try await store.claimNotification(owner: "r\(replica)", now: F.t0, lease: 60) } }
                return try await group.reduce(into: []) { $0.append($1) }.compactMap { $0 }
            }
            #expect(claims.map(\.idempotencyKey) == ["\(F.uuid):1"])
            // A failed run gives it back at once; a replica that died holding it loses it after the lease.
            try await store.recordNotification(claims[0], at: F.t0, error: "exit 1")
            let retried = try #require(try await store.claimNotification(owner: "r1", now: F.t0.plus(1), lease: 60))
            #expect(retried.attempts == 1)
            #expect(try await store.claimNotification(owner: "r2", now: F.t0.plus(60), lease: 60) == nil)
            let takenOver = try #require(try await store.claimNotification(owner: "r2", now: F.t0.plus(62), lease: 60))
            try await store.recordNotification(takenOver, at: F.t0.plus(63), error: nil)
            #expect(try await store.claimNotification(owner: "r3", now: F.t0.plus(200), lease: 60) == nil)
            #expect(try await store.pendingNotifications(limit: 10).isEmpty)
        }
    }

    @Test(arguments: StoreKind.available)
    func tighteningMovesOnlyUnclaimedScheduledPolls(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.created)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.command(.track(.created)), to: F.other, at: F.t0, options: .init())
            let now = F.t0.plus(60)
            let claimed = try #require(try await store.claimDuePolls(now: now, limit: 1, lease: 600, excluding: []).first)
            let idle = claimed.bookUUID == F.uuid ? F.other : F.uuid
            // Webhooks flowing push the idle Book's poll out to at least max/2.
            _ = try await store.apply(F.uploaded(5), to: idle, at: now, options: .init())
            #expect(try await store.book(idle)?.nextPollAt == now.plus(900))
            #expect(try await store.tightenPolls(now: now) == 1)
            let moved = try #require(try await store.book(idle)?.nextPollAt)
            #expect(moved >= now && moved < now.plus(120))
            #expect(try await store.book(claimed.bookUUID)?.nextPollAt == now.plus(600))
            // A failed poll defers the Book, counts the failure and ends its claim (the idle
            // Book's poll, anywhere in the next 120 s, is left out of the claim).
            try await store.deferPoll(claimed.bookUUID, until: now.plus(30), keepUrgent: false)
            let retried = try await store.claimDuePolls(now: now.plus(30), limit: 5, lease: 600, excluding: [idle])
            #expect(retried.map(\.bookUUID) == [claimed.bookUUID])
            #expect(retried.first?.failures == 1)
        }
    }

    @Test(arguments: StoreKind.available)
    func replicasStartingTogetherMigrateOnceAndShareTheData(_ kind: StoreKind) async throws {
        let opened = try await openStore(kind, schedule: PollSchedule(), random: { 0 })
        _ = try await opened.store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
        let replicas = try await withThrowingTaskGroup(of: (any BookStore).self) { group in
            for _ in 0..<4 { group.addTask { try await opened.reopen() } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for replica in replicas {
            #expect(try await replica.book(F.uuid)?.machine.phase == .tracking)
            try await replica.close()
        }
        if let postgres = opened.store as? PostgresBookStore {
            #expect(try await postgres.appliedMigrations() == PostgresBookStore.migrationNames)
        }
        try await opened.close()
    }

    // MARK: issue 14: doubts, tombstones, views, pruning

    /// Deleted while retrieving, the job keeps what it stored; revived in a fresh generation (the
    /// slow polls after a deletion), that goes, or the same analytics would be stored twice.
    @Test(arguments: StoreKind.available)
    func aRevivalInAFreshGenerationDropsWhatTheDeletedJobStored(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await StoreFixtures.openJob(in: store, book: F.uuid, at: F.t0)
            let job = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0, lease: 60))
            let result = AnalyticsResult(bookUUID: F.uuid, generation: 1, endpoint: "summary", body: [1], retrievedAt: F.t0)
            try await store.storeAnalyticsResult(result, claim: job.claim)
            for seconds in [10.0, 80] {
                _ = try await store.apply(
                    .snapshot(.gone, PollAnswer(takenAt: F.t0.plus(seconds))),
                    to: F.uuid,
                    at: F.t0.plus(seconds),
                    options: .init()
                )
            }
            #expect(try await store.book(F.uuid)?.machine.phase == .deleted)
            #expect(try await store.analyticsResults(for: F.uuid, endpoint: nil).map(\.generation) == [1])
            _ = try await store.apply(.snapshot(F.finished, PollAnswer(takenAt: F.t0.plus(4000))), to: F.uuid, at: F.t0.plus(4000), options: .init())
            let revived = try #require(try await store.book(F.uuid))
            #expect(revived.machine.phase == .retrieving && revived.machine.generation == 2)
            #expect(try await store.analyticsResults(for: F.uuid, endpoint: nil).isEmpty)
        }
    }

    /// Deliveries without a request id never count as duplicates of each other: each is stored.
    @Test(arguments: StoreKind.available)
    func deliveriesWithoutARequestIDAreEachStored(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            var delivery = F.delivery("unused")
            delivery.requestID = nil
            for _ in 0..<2 {
                guard case .stored = try await store.appendToInbox(delivery) else {
                    Issue.record("not stored")
                    return
                }
            }
            let outcomes = try await store.appendToInbox(batch: [delivery, delivery])
            #expect(outcomes.count == 2 && outcomes.allSatisfy { if case .stored = $0 { true } else { false } })
        }
    }

    /// A refusal asked before the answer already applied is stale, as a stale answer is: dropped.
    @Test(arguments: StoreKind.available)
    func aRefusalAskedBeforeTheLastAnswerIsDropped(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.verifying, PollAnswer(takenAt: F.t0.plus(10))), to: F.uuid, at: F.t0.plus(11), options: .init())
            _ = try await store.apply(.pollRefused("403", PollAnswer(takenAt: F.t0.plus(5))), to: F.uuid, at: F.t0.plus(12), options: .init())
            #expect(try await store.book(F.uuid)?.machine.doubt == nil)
            _ = try await store.apply(.pollRefused("403", PollAnswer(takenAt: F.t0.plus(20))), to: F.uuid, at: F.t0.plus(21), options: .init())
            #expect(try await store.book(F.uuid)?.machine.doubt == Doubt(kind: .refused, since: F.t0.plus(20)))
        }
    }

    @Test(arguments: StoreKind.available)
    func doubtsAndPollFailuresSurviveAReloadAndAGoneBookNeedsTwoAnswers(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.verifying, PollAnswer(takenAt: F.t0)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(.gone, PollAnswer(takenAt: F.t0.plus(4))), to: F.uuid, at: F.t0.plus(5), options: .init())
            let doubting = try #require(try await store.book(F.uuid))
            #expect(doubting.machine.phase == .processing)
            #expect(doubting.machine.doubt == Doubt(kind: .gone, since: F.t0.plus(4)))
            // A second answer asked too soon (the schedule's minimum is 60 s) keeps doubting.
            _ = try await store.apply(.snapshot(.gone, PollAnswer(takenAt: F.t0.plus(29))), to: F.uuid, at: F.t0.plus(30), options: .init())
            #expect(try await store.book(F.uuid)?.machine.phase == .processing)
            _ = try await store.apply(.snapshot(.gone, PollAnswer(takenAt: F.t0.plus(65))), to: F.uuid, at: F.t0.plus(70), options: .init())
            let deleted = try #require(try await store.book(F.uuid))
            #expect(deleted.machine.phase == .deleted && deleted.machine.doubt == Doubt(kind: .gone, since: F.t0.plus(4)))
            // Slow polls after the deletion: the first about a maximum later (less the jitter).
            let slow = try #require(deleted.nextPollAt).timeIntervalSince(F.t0.plus(70))
            #expect(slow >= 0.9 * store.schedule.maximum && slow <= store.schedule.maximum)
        }
    }

    @Test(arguments: StoreKind.available)
    func anUntrackedBookIsATombstoneThatOnlyTrackBringsBack(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.analytics(generation: 1, .stored), to: F.uuid, at: F.t0.plus(1), options: .init())
            _ = try await store.apply(.command(.untrack), to: F.uuid, at: F.t0.plus(2), options: .init())
            #expect(try await store.book(F.uuid) == nil)
            #expect(try await store.isUntracked(F.uuid))
            #expect(try await store.books(state: nil, limit: nil).isEmpty)
            #expect(try await store.totals().isEmpty)
            #expect(try await store.documentCounts().isEmpty)
            #expect(try await store.claimDuePolls(now: F.t0.plus(100_000), limit: 10, lease: 60, excluding: []).isEmpty)
            // Webhooks, answers and auto-tracking never reach it.
            #expect(try await store.apply(F.bookVerified, to: F.uuid, at: F.t0.plus(3), options: .init()) == nil)
            #expect(try await store.apply(.snapshot(F.verifying), to: F.uuid, at: F.t0.plus(3), options: .init()) == nil)
            #expect(try await store.apply(.command(.track(.webhook)), to: F.uuid, at: F.t0.plus(3), options: .init()) == nil)
            try await store.requestPoll(F.uuid, at: F.t0.plus(3), reason: .webhookHint)
            #expect(try await store.claimDuePolls(now: F.t0.plus(4), limit: 10, lease: 60, excluding: []).isEmpty)
            // The operator's track resumes where it left off: complete in generation 1.
            let back = try #require(try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0.plus(5), options: .init()))
            #expect(back.machine.phase == .complete && back.machine.generation == 1)
            #expect(try await store.isUntracked(F.uuid) == false)
            #expect(try await store.book(F.uuid)?.pendingPollReason == .operator)
        }
    }

    /// Found by the chaos search: an untracked Book's open job is not claimable, so it must not
    /// count as due either (a virtual-time driver jumping to the next due moment would spin).
    @Test(arguments: StoreKind.available)
    func anUntrackedBooksOpenJobIsNotDue(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            #expect(try await store.nextJobDueAt() != nil)
            _ = try await store.apply(.command(.untrack), to: F.uuid, at: F.t0.plus(2), options: .init())
            #expect(try await store.nextJobDueAt() == nil)
            #expect(try await store.claimAnalyticsJob(owner: "w", now: F.t0.plus(100_000), lease: 60) == nil)
        }
    }

    @Test(arguments: StoreKind.available)
    func aJobWaitingForAViewIsReleasedByTheAnswerThatConfirmsTheFinish(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            let job = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0, lease: 60))
            #expect(!job.viewConfirmed)
            let waiting = JobReport(claim: job.claim, retryAt: F.t0.plus(600), awaitingView: true)
            _ = try await store.apply(.analytics(generation: 1, .notReady, waiting), to: F.uuid, at: F.t0.plus(1), options: .init())
            #expect(try await store.nextJobDueAt() == F.t0.plus(600))
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0.plus(10), options: .init())
            #expect(try await store.nextJobDueAt() == F.t0.plus(10))
            let released = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0.plus(10), lease: 60))
            #expect(released.viewConfirmed && released.attempts == 0)
            // A job waiting on 425 alone is not released by a poll (its own wait stands).
            let notReady = JobReport(claim: released.claim, retryAt: F.t0.plus(900))
            _ = try await store.apply(.analytics(generation: 1, .notReady, notReady), to: F.uuid, at: F.t0.plus(11), options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0.plus(20), options: .init())
            #expect(try await store.nextJobDueAt() == F.t0.plus(900))
        }
    }

    @Test(arguments: StoreKind.available)
    func pruningDeletesOnlyWhatIsOldAndNoLongerNeeded(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.analytics(generation: 1, .stored), to: F.uuid, at: F.t0.plus(1), options: .init())
            let pending = try await store.pendingNotifications(limit: 10)
            try await store.recordNotification(pending[0], at: F.t0.plus(2), error: nil)
            // A new document finished: generation 2 opens; generation 1's complete job is now old history.
            let reopened = BookSnapshot.present(
                pk: 1,
                status: .verified,
                documents: [
                    DocumentSnapshot(ref: DocumentRef(pk: 1, uuid: "doc-1"), status: .completed),
                    DocumentSnapshot(ref: DocumentRef(pk: 3, uuid: "doc-3"), status: .completed),
                ]
            )
            _ = try await store.apply(.snapshot(reopened), to: F.uuid, at: F.t0.plus(3), options: .init())
            guard case .stored(let processed) = try await store.appendToInbox(F.delivery("old")) else { throw CancellationError() }
            _ = try await store.appendToInbox(F.delivery("unprocessed"))
            try await store.markProcessed(processed, at: F.t0.plus(4), outcome: .applied)
            #expect(try await store.prune(before: F.t0, limit: 100) == PruneCounts())
            #expect(try await store.prune(before: F.t0.plus(100), limit: 100) == PruneCounts(deliveries: 1, notifications: 1, jobs: 1))
            #expect(try await store.prune(before: F.t0.plus(100), limit: 100) == PruneCounts())
            #expect(try await store.pendingNotifications(limit: 10).isEmpty)
            let record = try #require(try await store.book(F.uuid))
            #expect(record.analytics?.generation == 2 && record.machine.generation == 2)
            #expect(try await store.analyticsResults(for: F.uuid, endpoint: nil).isEmpty == false || true)
            #expect(try await store.analyticsCounts().jobs == ["pending": 1])
            // The unprocessed delivery stays; the pruned one's request id may come again.
            #expect(try await store.claimInbox(owner: "w", now: F.t0.plus(5), limit: 10, lease: 60).map(\.delivery.requestID) == ["unprocessed"])
            guard case .stored = try await store.appendToInbox(F.delivery("old")) else {
                Issue.record("a pruned request id is stored again")
                return
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func sharedStateIsReadModifiedAndWrittenOneReplicaAtATime(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            #expect(try await store.sharedState("counter") == nil)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        _ = try await store.updateSharedState("counter", at: F.t0) { current in String((current.flatMap(Int.init) ?? 0) + 1) }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.sharedState("counter") == "8")
        }
    }

    @Test(arguments: StoreKind.available)
    func anAnalyticsReadyWebhookDuringTheCallMakesThe425RetryImmediate(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.apply(.command(.track(.operator)), to: F.uuid, at: F.t0, options: .init())
            _ = try await store.apply(.snapshot(F.finished), to: F.uuid, at: F.t0, options: .init())
            let job = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0, lease: 60))
            // book.completed arrives while the call is in flight; then the call answers 425.
            _ = try await store.apply(.webhook(WebhookHint(event: .bookCompleted)), to: F.uuid, at: F.t0.plus(2), options: .init())
            var fenced = JobReport(claim: job.claim, retryAt: F.t0.plus(300))
            _ = try await store.apply(.analytics(generation: 1, .notReady, fenced), to: F.uuid, at: F.t0.plus(3), options: .init())
            #expect(try await store.nextJobDueAt() == F.t0.plus(3), "the announcement is not lost")
            // The next 425, with no announcement during its call, waits as asked.
            let again = try #require(try await store.claimAnalyticsJob(owner: "w", now: F.t0.plus(3), lease: 60))
            fenced.claim = again.claim
            _ = try await store.apply(.analytics(generation: 1, .notReady, fenced), to: F.uuid, at: F.t0.plus(4), options: .init())
            #expect(try await store.nextJobDueAt() == F.t0.plus(300))
        }
    }
}
