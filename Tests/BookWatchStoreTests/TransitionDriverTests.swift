import BookWatchCore
import BookWatchStore
import Foundation
import Testing

/// `TransitionDriver` without a database: the statements it asks for, in order, given the rows a
/// store would answer. The conformance suite runs the same driver against both real stores.
@Suite struct TransitionDriverTests {
    static let uuid = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!
    static let now = Date(timeIntervalSince1970: 1_774_000_000)

    struct Row: SQLRow {
        var values: [String: SQLValue]
        func sqlValue(_ column: String) throws -> SQLValue {
            guard let value = values[column] else { throw StoreError(.corrupt, subject: column, detail: "missing") }
            return value
        }
    }

    static func bookRow(untracked: Bool = false, doubtKind: String? = nil) -> Row {
        Row(values: [
            "uuid": .text(uuid.rawValue), "pk": .integer(42), "state": .text("processing"), "generation": .integer(1),
            "last_opened_generation": .integer(0), "book_status": .text("VERIFYING"), "failure_reason": .null,
            "last_webhook_at": .null, "last_polled_at": .integer(1), "finished_at": .null, "watched_since_creation": .integer(0),
            "doubt_kind": doubtKind.map(SQLValue.text) ?? .null, "doubt_since": doubtKind == nil ? .null : .integer(3), "finish_evidence": .null,
            "untracked_at": untracked ? .integer(5) : .null,
            "next_poll_at": .integer(9),
            "poll_reason": .null, "poll_claimed_at": .null, "snapshot_as_of": .null, "poll_failures": .integer(0),
        ])
    }

    /// Drives `driver`, answering each statement with `answer(sql)`; the statements (SQLite
    /// spelling) and the outcome.
    static func drive(_ driver: TransitionDriver, answer: (String) -> [Row]) throws -> ([String], TransitionOutcome?) {
        var driver = driver
        var statements: [String] = []
        var rows: [Row] = []
        while true {
            switch try driver.next(rows) {
            case .run(let step):
                let sql = step.query.render(SQLiteDialect()).sql
                statements.append(sql)
                rows = answer(sql)
                if rows.isEmpty, let required = step.required { throw required }
            case .finish(let outcome):
                return (statements, outcome)
            }
        }
    }

    static func driver(_ input: BookInput, options: TransitionOptions = .init()) -> TransitionDriver {
        TransitionDriver(input, uuid: uuid, now: now, options: options, draw: 0.5, schedule: PollSchedule())
    }

    @Test func aTrackOfAnUnknownBookClaimsItsRowThenContinuesAfterTheLastJob() throws {
        let (statements, outcome) = try Self.drive(Self.driver(.command(.track(.operator)))) { sql in
            if sql.hasPrefix("INSERT INTO books (uuid, state") { return [Row(values: ["uuid": .text(Self.uuid.rawValue)])] }
            if sql.contains("MAX(generation)") { return [Row(values: ["g": .integer(3)])] }
            return []
        }
        #expect(statements.count >= 4)
        #expect(statements[0].hasPrefix("SELECT * FROM books WHERE uuid = ?"))
        #expect(statements[1].hasPrefix("INSERT INTO books (uuid, state, generation, created_at, updated_at)"))
        #expect(statements[2].contains("MAX(generation)"))
        #expect(statements.contains { $0.hasPrefix("INSERT INTO books (uuid, pk, state") })
        #expect(outcome?.created == true)
        #expect(outcome?.machine.generation == 4)
    }

    /// A doubt a newer build wrote (read after a rollback) is no doubt, not a corrupt row that
    /// would fail every transition of the Book; a known one is read.
    @Test func aDoubtOfAKindThisBuildDoesNotKnowIsNoDoubt() throws {
        for (kind, expected) in [("from-a-newer-build", nil), ("gone", Doubt(kind: .gone, since: Date(storageMillis: 3)))] as [(String, Doubt?)] {
            let (_, tracked) = try Self.drive(Self.driver(.command(.track(.operator)))) { sql in
                sql.hasPrefix("SELECT * FROM books") ? [Self.bookRow(doubtKind: kind)] : []
            }
            #expect(tracked?.machine.doubt == expected, "\(kind)")
        }
    }

    @Test func losingTheRaceToCreateReadsTheOtherTransactionsRow() throws {
        var reads = 0
        let (statements, outcome) = try Self.drive(Self.driver(.command(.track(.operator)))) { sql in
            if sql.hasPrefix("SELECT * FROM books") {
                reads += 1
                return reads == 1 ? [] : [Self.bookRow()]
            }
            return []
        }
        #expect(statements.filter { $0.hasPrefix("SELECT * FROM books") }.count == 2)
        #expect(statements.contains { $0.hasPrefix("SELECT * FROM documents") })
        #expect(!statements.contains { $0.contains("MAX(generation)") })
        #expect(outcome?.created == false)
        #expect(outcome?.machine.phase == .processing)
    }

    @Test func aHintForAnUnknownBookWithoutAutoTrackWritesNothing() throws {
        let hint = BookInput.webhook(WebhookHint(event: .bookVerified), HintDelivery(inboxRow: 8))
        let (statements, outcome) = try Self.drive(Self.driver(hint)) { _ in [] }
        #expect(statements.count == 1)
        #expect(outcome == nil)
    }

    @Test func aTombstoneRefusesAHintAndResumesOnTrack() throws {
        let hint = BookInput.webhook(WebhookHint(event: .bookVerified))
        let (hintStatements, refused) = try Self.drive(Self.driver(hint)) { sql in
            sql.hasPrefix("SELECT * FROM books") ? [Self.bookRow(untracked: true)] : []
        }
        #expect(hintStatements.count == 1)
        #expect(refused == nil)
        let (_, resumed) = try Self.drive(Self.driver(.command(.track(.webhook)))) { sql in
            sql.hasPrefix("SELECT * FROM books") ? [Self.bookRow(untracked: true)] : []
        }
        #expect(resumed == nil)
        let (statements, tracked) = try Self.drive(Self.driver(.command(.track(.operator)))) { sql in
            sql.hasPrefix("SELECT * FROM books") ? [Self.bookRow(untracked: true)] : []
        }
        #expect(tracked?.created == false)
        // The upsert writes untracked_at NULL again (the tombstone is lifted).
        #expect(statements.contains { $0.hasPrefix("INSERT INTO books (uuid, pk, state") })
    }

    @Test func theInboxRowIsMarkedFirstAndAnAlreadyProcessedRowRollsBack() throws {
        let hint = BookInput.webhook(
            WebhookHint(event: .documentVerified, document: DocumentRef(pk: 1, uuid: nil), authenticated: true),
            HintDelivery(inboxRow: 8)
        )
        let answer: (String) -> [Row] = { sql in
            if sql.hasPrefix("SELECT * FROM books") { return [Self.bookRow()] }
            if sql.hasPrefix("UPDATE webhook_inbox") { return [Row(values: ["id": .integer(8)])] }
            return []
        }
        let (statements, outcome) = try Self.drive(Self.driver(hint), answer: answer)
        let written = statements.drop { $0.hasPrefix("SELECT") }
        #expect(written.first?.hasPrefix("UPDATE webhook_inbox SET processed_at") == true)
        #expect(outcome != nil)
        #expect(throws: StoreError.self) {
            _ = try Self.drive(Self.driver(hint)) { sql in
                sql.hasPrefix("SELECT * FROM books") ? [Self.bookRow()] : []
            }
        }
    }

    @Test func aFencedOutcomeChecksItsClaimBeforeAnyWrite() throws {
        var book = Self.bookRow().values
        book["state"] = .text("retrieving")
        let report = JobReport(
            claim: JobClaim(owner: "w", token: 3),
            results: [AnalyticsResult(bookUUID: Self.uuid, generation: 1, endpoint: "summary", body: [1], retrievedAt: Self.now)]
        )
        let input = BookInput.analytics(generation: 1, .stored, report)
        let held: (String) -> [Row] = { sql in
            if sql.hasPrefix("SELECT * FROM books") { return [Row(values: book)] }
            if sql.hasPrefix("SELECT id FROM analytics_jobs") { return [Row(values: ["id": .integer(1)])] }
            return []
        }
        let (statements, outcome) = try Self.drive(Self.driver(input), answer: held)
        let fence = try #require(statements.firstIndex { $0.hasPrefix("SELECT id FROM analytics_jobs") })
        let insert = try #require(statements.firstIndex { $0.hasPrefix("INSERT INTO analytics_results") })
        #expect(fence < insert)
        #expect(outcome?.machine.phase == .complete)
        let error = #expect(throws: StoreError.self) {
            _ = try Self.drive(Self.driver(input)) { sql in sql.hasPrefix("SELECT * FROM books") ? [Row(values: book)] : [] }
        }
        #expect(error?.kind == .lostClaim)
    }
}

extension TransitionDriverTests {
    /// A Book with 9,000 documents (72,000 values): no statement binds more than one chunk's
    /// worth, so PostgreSQL's 65,535-bind protocol limit and SQLite's 32,766 are never reached.
    @Test func aBookOfThousandsOfDocumentsIsWrittenInBoundedStatements() throws {
        let documents = (1...9000).map { TrackedDocument(ref: DocumentRef(pk: $0), status: .completed) }
        let machine = BookMachine(
            uuid: Self.uuid,
            pk: 1,
            phase: .processing,
            generation: 1,
            lastOpenedGeneration: 0,
            bookStatus: .verifying,
            documents: documents,
            lastWebhookAt: nil,
            lastSnapshotAt: nil,
            finishedAt: nil,
            failureReason: nil
        )
        let steps = TransitionDriver.writeBook(machine, schedule: .none, now: 0)
        let binds = steps.map { $0.query.render(PostgreSQLDialect()).binds.count }
        #expect(binds.allSatisfy { $0 <= SQLQuery.rowsPerStatement * 8 })
        let inserts = steps.filter { $0.query.render(SQLiteDialect()).sql.hasPrefix("INSERT INTO documents") }
        #expect(inserts.count == 18)
        #expect(binds.reduce(0, +) > 9000 * 8)
        // The Book's own row is one statement text for every Book: kept prepared (preparing the
        // upsert each time was most of an apply's SQLite time).
        let upsert = try #require(steps.first { $0.query.render(SQLiteDialect()).sql.hasPrefix("INSERT INTO books") })
        #expect(!upsert.query.hasList)
    }
}
