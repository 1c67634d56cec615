import BookWatchCore
import Foundation

/// `PollStore` and `apply` for both stores.
extension SQLStatementStore {
    /// Runs `TransitionDriver` (see `BookStore.apply`) in one transaction.
    public func apply(_ input: BookInput, to uuid: BookUUID, at now: Date, options: TransitionOptions) async throws -> TransitionOutcome? {
        let driver = TransitionDriver(input, uuid: uuid, now: now, options: options, draw: random(), schedule: schedule)
        return try await perform(StoreOperation(.transaction, try Self.next(driver, rows: [])))
    }

    private static func next(_ driver: TransitionDriver, rows: [any SQLRow]) throws -> StoreOperation<TransitionOutcome?>.Next {
        try drive(driver, rows: rows) { .done($0) }
    }

    /// Runs `driver` to its outcome, then goes on with `then`.
    private static func drive<Answer: Sendable>(
        _ driver: TransitionDriver,
        rows: [any SQLRow],
        then: @escaping @Sendable (TransitionOutcome?) throws -> StoreOperation<Answer>.Next
    ) throws -> StoreOperation<Answer>.Next {
        var driver = driver
        switch try driver.next(rows) {
        case .run(let step): return .run(step, then: { [driver] rows in try drive(driver, rows: rows, then: then) })
        case .finish(let outcome): return try then(outcome)
        }
    }

    /// `BookRegistry.track(_:source:at:)` for both stores: every Book's `track` transition and
    /// label in one transaction.
    public func track(_ books: [(uuid: BookUUID, label: String?)], source: TrackSource, at now: Date) async throws -> [Bool] {
        let drivers = books.map { book in
            (TransitionDriver(.command(.track(source)), uuid: book.uuid, now: now, options: .init(), draw: random(), schedule: schedule), book)
        }
        return try await perform(StoreOperation(.transaction, try Self.trackEach(drivers[...], created: [])))
    }

    private static func trackEach(
        _ rest: ArraySlice<(TransitionDriver, (uuid: BookUUID, label: String?))>,
        created: [Bool]
    ) throws -> StoreOperation<[Bool]>.Next {
        guard let (driver, book) = rest.first else { return .done(created) }
        let after = rest.dropFirst()
        return try drive(driver, rows: []) { outcome in
            let label = book.label.map { [BookLabels.setLabel(book.uuid.rawValue, $0)] } ?? []
            return StoreOperation.chain(label, then: try trackEach(after, created: created + [outcome?.created == true]))
        }
    }

    /// `BookRegistry.uuid(forPK:)` for both stores. A tracked Book wins over a tombstone with the same pk.
    public func uuid(forPK pk: Int) async throws -> BookUUID? {
        try await perform(
            StoreOperation(.read, SQLStep("SELECT uuid FROM books WHERE pk = \(pk) ORDER BY untracked_at IS NOT NULL LIMIT 1", reads: true)) {
                try $0.first.flatMap { BookUUID(try $0.string("uuid")) }
            }
        )
    }

    /// `PollStore.claimDuePolls` for both stores.
    public func claimDuePolls(now: Date, limit: Int, lease: TimeInterval, excluding: Set<BookUUID>) async throws -> [DuePoll] {
        let t = now.storageMillis
        let until = now.addingTimeInterval(lease).storageMillis
        let skip = excluding.map(\.rawValue)
        let claim: @Sendable ([DuePoll]) -> StoreOperation<[DuePoll]>.Next = { due in
            guard !due.isEmpty else { return .done([]) }
            let claimed = due.map { poll in
                var poll = poll
                poll.claimedAt = Date(storageMillis: t)
                return poll
            }
            return .run(
                SQLStep(
                    "UPDATE books SET next_poll_at = \(until), poll_claimed_at = \(t) WHERE uuid IN \(set: due.map(\.bookUUID.rawValue))"
                ),
                then: { _ in .done(claimed) }
            )
        }
        // Urgent first, then the most overdue; rows another replica is claiming are skipped.
        return try await perform(
            StoreOperation(
                .transaction,
                .run(PollStatements.due(urgent: true, now: t, limit: limit, excluding: skip, claiming: true)) { rows in
                    let urgent = try rows.compactMap(DuePoll.init(row:))
                    guard urgent.count < limit else { return claim(urgent) }
                    return .run(PollStatements.due(urgent: false, now: t, limit: limit - urgent.count, excluding: skip, claiming: true)) {
                        claim(urgent + (try $0.compactMap(DuePoll.init(row:))))
                    }
                }
            )
        )
    }

    /// `PollStore.nextPollAt` for both stores.
    public func nextPollAt() async throws -> Date? {
        try await perform(
            StoreOperation(.read, SQLStep("SELECT MIN(next_poll_at) AS t FROM books WHERE next_poll_at IS NOT NULL", reads: true)) {
                try $0.first?.optionalInt64("t").map(Date.init(storageMillis:))
            }
        )
    }

    /// `PollStore.requestPoll` for both stores. Never for a deleted or untracked Book.
    public func requestPoll(_ uuid: BookUUID, at: Date, reason: PollReason) async throws {
        let t = at.storageMillis
        try await perform(
            StoreOperation(
                .statement,
                writes: [
                    SQLStep(
                        """
                        UPDATE books SET next_poll_at = \(.least)(COALESCE(next_poll_at, \(t)), \(t)), poll_reason = \(reason.rawValue),
                            poll_claimed_at = NULL
                        WHERE uuid = \(uuid.rawValue) AND state <> 'deleted' AND untracked_at IS NULL
                        """
                    )
                ]
            )
        )
    }

    /// `PollStore.deferPoll` for both stores.
    public func deferPoll(_ uuid: BookUUID, until: Date, keepUrgent: Bool) async throws {
        try await perform(
            StoreOperation(
                .statement,
                writes: [
                    SQLStep(
                        """
                        UPDATE books SET next_poll_at = \(until.storageMillis), poll_claimed_at = NULL, poll_failures = poll_failures + 1,
                            poll_reason = CASE WHEN \(keepUrgent) THEN poll_reason ELSE NULL END
                        WHERE uuid = \(uuid.rawValue) AND next_poll_at IS NOT NULL
                        """
                    )
                ]
            )
        )
    }

    /// See `BookStore.tightenPolls`: exactly the rows that move are read (locked in uuid order on
    /// PostgreSQL, so two replicas tightening at once queue instead of deadlocking), then moved in
    /// batches of one statement each.
    @discardableResult
    public func tightenPolls(now: Date, scope: TighteningScope, silentInterval: TimeInterval?, finishedInterval: TimeInterval?) async throws -> Int {
        let schedule = schedule
        let random = random
        let limits = BooksTable.tighteningLimits(now: now, schedule: schedule, silentInterval: silentInterval, finishedInterval: finishedInterval)
        let read = SQLStep(
            """
            SELECT \(unescaped: BooksTable.tighteningColumns) FROM books
            WHERE \(BooksTable.tighteningCondition(limits, scope: scope)) ORDER BY uuid\(.rowLock)
            """,
            reads: true
        )
        return try await perform(
            StoreOperation(
                .transaction,
                .run(read) { rows in
                    let candidates = try rows.map(BooksTable.tighteningCandidate)
                    let moves = BooksTable.tightened(
                        candidates,
                        now: now,
                        schedule: schedule,
                        silentInterval: silentInterval,
                        finishedInterval: finishedInterval,
                        random: random
                    )
                    let batches = stride(from: 0, to: moves.count, by: PollStatements.batch).map {
                        PollStatements.move(moves[$0..<min($0 + PollStatements.batch, moves.count)])
                    }
                    return StoreOperation<Int>.chain(batches, then: .done(moves.count))
                }
            )
        )
    }
}

/// The poll statements both stores run.
package enum PollStatements {
    /// Rows per `UPDATE` when many polls move.
    static let batch = SQLQuery.rowsPerStatement

    /// Polls due by `now`, urgent or scheduled, most overdue first: one index walk each, stopping
    /// at `limit` (one ORDER BY over both kinds sorted every due row). `claiming`: rows another
    /// replica is claiming are skipped (PostgreSQL).
    package static func due(urgent: Bool, now t: Int64, limit: Int, excluding skip: [String], claiming: Bool) -> SQLStep {
        let index: SQLQuery = urgent ? "\(.indexedBy("books_urgent_poll"))" : "\(.indexedBy("books_due_poll"))"
        let kind: SQLQuery = urgent ? "poll_reason IS NOT NULL" : "next_poll_at IS NOT NULL AND poll_reason IS NULL"
        let notIn: SQLQuery = skip.isEmpty ? "" : " AND uuid NOT IN \(set: skip)"
        let lock: SQLQuery = claiming ? "\(.skipLocked)" : ""
        return SQLStep(
            "SELECT uuid, poll_reason, next_poll_at, poll_failures FROM books\(index) WHERE \(kind) AND next_poll_at <= \(t)\(notIn) "
                + "ORDER BY next_poll_at LIMIT \(limit)\(lock)",
            reads: true
        )
    }

    /// One `UPDATE` moving several Books' polls to their own times.
    static func move(_ moves: ArraySlice<(uuid: String, next: Int64)>) -> SQLStep {
        var cases: SQLQuery = "UPDATE books SET next_poll_at = CASE uuid"
        for move in moves { cases = cases + " WHEN \(move.uuid) THEN \(move.next)" }
        return SQLStep(cases + " END WHERE uuid IN \(list: moves.map(\.uuid))")
    }
}

extension DuePoll {
    /// A due-poll row (`uuid, poll_reason, next_poll_at, poll_failures`); nil for a uuid that does not parse.
    package init?(row: any SQLRow) throws {
        guard let uuid = BookUUID(try row.string("uuid")) else { return nil }
        self.init(
            bookUUID: uuid,
            reason: try row.optionalString("poll_reason").flatMap(PollReason.init(rawValue:)),
            dueAt: Date(storageMillis: try row.int64("next_poll_at")),
            failures: try row.int("poll_failures")
        )
    }
}

extension SQLStatementStore {
    /// Polls due by `now`, urgent ones first, then the most overdue: from the `books_due_poll`
    /// index, never a scan of all Books. Reads only (the scale benchmark's query); the watcher claims.
    public func duePolls(now: Date, limit: Int) async throws -> [DuePoll] {
        let t = now.storageMillis
        let urgent = PollStatements.due(urgent: true, now: t, limit: limit, excluding: [], claiming: false)
        return try await perform(
            StoreOperation(
                .read,
                .run(urgent) { rows in
                    let found = try rows.compactMap(DuePoll.init(row:))
                    guard found.count < limit else { return .done(found) }
                    let overdue = PollStatements.due(urgent: false, now: t, limit: limit - found.count, excluding: [], claiming: false)
                    return .run(overdue) { rows in .done(found + (try rows.compactMap(DuePoll.init(row:)))) }
                }
            )
        )
    }
}
