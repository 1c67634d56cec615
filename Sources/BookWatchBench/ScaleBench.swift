import BookWatchClocks
import BookWatchCore
import BookWatchPostgres
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI

/// Figures of `bookwatch bench scale` for one database size.
package struct ScaleFigures {
    /// Books filled.
    package var books = 0
    /// Documents filled.
    package var documents = 0
    /// How long the fill took.
    package var fillSeconds = 0.0
    /// The database's size.
    package var databaseMB = 0.0
    /// `serve` from start to ready.
    package var readySeconds = 0.0
    /// `serve`'s resident memory once ready.
    package var rssReadyMB = 0.0
    /// `serve`'s CPU while idle.
    package var idleCPUPercent = 0.0
    /// `status --limit 50`.
    package var statusMilliseconds = 0.0
    /// Median microseconds of the due-poll query with nothing due, with a backlog of every Book
    /// due, and of a trivial query (the baseline of the same connection).
    package var duePollIdleMicros = 0.0
    /// The due-poll query with a backlog due.
    package var duePollBacklogMicros = 0.0
    /// A trivial query on the same connection (the baseline).
    package var baselineMicros = 0.0
    /// Median microseconds of what a scrape reads now (`gauges`: indexed counts) and of the
    /// documents count it also read before (`documentCounts`, now in the background).
    package var scrapeGaugesMicros = 0.0
    /// The documents count (a scan), which every scrape paid before.
    package var documentCountsMicros = 0.0
    /// Resident memory after a virtual hour of work.
    package var rssAfterHourMB = 0.0
    /// Resident memory before it.
    package var rssBeforeHourMB = 0.0
    /// Polls made in the virtual hour.
    package var virtualHourPolls = 0
    /// Transactions per second the idle `serve` committed (PostgreSQL's `pg_stat_database`; nil
    /// on SQLite, which keeps no such count).
    package var idleTransactionsPerSecond: Double?
    /// Wall time the virtual hour took.
    package var virtualHourWallSeconds = 0.0
}

/// Where `bench scale` puts its databases: SQLite files in a directory, or a fresh schema per size
/// on a PostgreSQL server (dropped afterwards).
package enum ScaleDatabase: Sendable {
    case sqlite(directory: URL)
    case postgres(url: String)

    /// The `--database` value of the database for `books`.
    func location(books: Int) throws -> String {
        switch self {
        case .sqlite(let directory): return directory.appendingPathComponent("scale-\(books).sqlite").path
        case .postgres(let url):
            let schema = "\(ScaleBench.schemaPrefix)\(books)_\(UUID().uuidString.prefix(8).lowercased())"
            guard let named = DatabaseLocation.url(url, schema: schema) else {
                throw BenchFailure("bench scale: the PostgreSQL URL must not name a schema (each size gets its own)")
            }
            return named
        }
    }

    /// Opens the store at `location` (created when missing); on PostgreSQL, only in a schema of
    /// the bench's own.
    func open(_ location: String) async throws -> any SQLStatementStore {
        switch self {
        case .sqlite: return try SQLiteBookStore(path: location)
        case .postgres:
            let store = try await PostgresBookStore.open(url: location, logger: Logger(label: "scale") { _ in SwiftLogNoOpLogHandler() })
            guard store.schema?.hasPrefix(ScaleBench.schemaPrefix) == true else {
                try? await store.close()
                throw BenchFailure("bench scale: \(DatabaseLocation(location).redacted) did not open a schema of the bench's own")
            }
            return store
        }
    }
}

/// Measures `serve` and `status` on databases of growing size (docs/benchmarks.md).
package enum ScaleBench {
    /// Schemas `bench scale` makes on PostgreSQL start with this (and only those are dropped).
    static let schemaPrefix = "bookwatch_scale_"

    /// The database's size: the SQLite file and its write-ahead log, or the schema's relations.
    static func databaseMB(_ store: any SQLStatementStore, location: String) async throws -> Double {
        if store is PostgresBookStore {
            let bytes = try await store.perform(
                StoreOperation(
                    .read,
                    SQLStep(
                        """
                        SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint AS bytes FROM pg_class c
                        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'
                        """,
                        reads: true
                    )
                ) { rows in try rows.first?.int64("bytes") ?? 0 }
            )
            return Double(bytes) / 1_048_576
        }
        return [location, location + "-wal"].reduce(0.0) { total, file in
            let size = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? NSNumber
            return total + Double(size?.int64Value ?? 0) / 1_048_576
        }
    }

    /// Transactions committed or rolled back in the whole PostgreSQL database so far.
    static func databaseTransactions(_ store: any SQLStatementStore) async throws -> Int64 {
        try await store.perform(
            StoreOperation(
                .read,
                SQLStep(
                    """
                    SELECT (xact_commit + xact_rollback)::bigint AS done FROM pg_stat_database WHERE datname = current_database()
                    """,
                    reads: true
                )
            ) { rows in try rows.first?.int64("done") ?? 0 }
        )
    }
    static func residentMB(pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        let kilobytes = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kilobytes / 1024
    }

    /// User + system CPU seconds of a process so far.
    static func cpuSeconds(pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based over the whole line).
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    static func executable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Fills a database of `books` in `database` and measures it; `print` gets each line.
    package static func run(books: Int, database: ScaleDatabase, idleSeconds: Double, print: (String) -> Void) async throws -> ScaleFigures {
        let location = try database.location(books: books)
        let store = try await database.open(location)
        let figures: ScaleFigures
        do {
            figures = try await measure(books: books, location: location, store: store, idleSeconds: idleSeconds)
        } catch let stalled as VirtualTime.Stalled where !stalled.ended {
            throw stalled  // its step may still hold the store: neither dropped nor closed under it
        } catch {
            try? await remove(store)
            throw error
        }
        try await remove(store)
        return figures
    }

    /// Closes the bench's store; a PostgreSQL schema of the bench's own is dropped first (a
    /// failure names it, and the store is closed anyway).
    static func remove(_ store: any SQLStatementStore) async throws {
        var failure: BenchFailure?
        if let postgres = store as? PostgresBookStore {
            do {
                try await postgres.dropSchema(prefix: schemaPrefix)
            } catch {
                failure = BenchFailure("bench scale: schema \(postgres.schema ?? "?") was not dropped: \(error)")
            }
        }
        try? await store.close()
        if let failure { throw failure }
    }

    static func measure(
        books: Int,
        location: String,
        store: any SQLStatementStore,
        idleSeconds: Double
    ) async throws -> ScaleFigures {
        var figures = ScaleFigures()
        let fill = try await store.fillForBenchmark(books: books, documentsPerBook: 10, now: Date())
        let now = fill.scheduledFrom
        do {
            figures.books = fill.books
            figures.documents = fill.documents
            figures.fillSeconds = fill.seconds
            // Query costs, median of 200 on the same connection.
            var idle: [Double] = []
            var backlog: [Double] = []
            var baseline: [Double] = []
            for _ in 0..<200 {
                var start = ContinuousClock.now
                _ = try await store.duePolls(now: now, limit: 32)
                idle.append((ContinuousClock.now - start).inSeconds * 1e6)
                start = ContinuousClock.now
                _ = try await store.duePolls(now: now.addingTimeInterval(30 * 86_400), limit: 32)
                backlog.append((ContinuousClock.now - start).inSeconds * 1e6)
                start = ContinuousClock.now
                _ = try await store.nextJobDueAt()
                baseline.append((ContinuousClock.now - start).inSeconds * 1e6)
            }
            // The scrape's reads, median of 20: the indexed gauges, and the documents scan.
            var gauges: [Double] = []
            var documents: [Double] = []
            for _ in 0..<20 {
                var start = ContinuousClock.now
                _ = try await store.gauges(overdueBefore: now)
                gauges.append((ContinuousClock.now - start).inSeconds * 1e6)
                start = ContinuousClock.now
                _ = try await store.documentCounts()
                documents.append((ContinuousClock.now - start).inSeconds * 1e6)
            }
            figures.scrapeGaugesMicros = median(gauges)
            figures.documentCountsMicros = median(documents)
            figures.duePollIdleMicros = median(idle)
            figures.duePollBacklogMicros = median(backlog)
            figures.baselineMicros = median(baseline)
        }
        // SQLite: the file with its write-ahead log (not checkpointed yet after the fill).
        figures.databaseMB = try await databaseMB(store, location: location)

        // serve as a real process: start to ready, RSS, idle CPU.
        let port = Int.random(in: 20_000...40_000)
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: executable())
        serve.arguments = ["serve", "--port", "\(port)", "--log-level", "error"]
        // The database in the environment, not on the command line (a URL's password would show in `ps`).
        var environment = ProcessInfo.processInfo.environment
        environment["BOOKWATCH_DATABASE"] = location
        environment["OCROLUS_CLIENT_ID"] = "scale"
        environment["OCROLUS_CLIENT_SECRET"] = "scale-secret"
        environment["OCROLUS_API_URL"] = "http://127.0.0.1:9"
        environment["OCROLUS_AUTH_URL"] = "http://127.0.0.1:9/oauth/token"
        serve.environment = environment
        serve.standardOutput = FileHandle.nullDevice
        serve.standardError = FileHandle.nullDevice
        let started = ContinuousClock.now
        try serve.run()
        defer {
            if serve.isRunning {
                serve.terminate()
                serve.waitUntilExit()
            }
        }
        let transport = AsyncHTTPClientTransport()
        let ready = OutgoingRequest(method: "GET", url: "http://127.0.0.1:\(port)/readyz", headers: [], timeout: 1)
        var isReady = false
        while ContinuousClock.now - started < .seconds(60) {
            if let answer = try? await transport.send(ready), answer.status == 200 {
                isReady = true
                break
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        guard isReady else { throw BenchFailure("bench scale: serve was not ready within 60 s") }
        figures.readySeconds = (ContinuousClock.now - started).inSeconds
        figures.rssReadyMB = residentMB(pid: serve.processIdentifier)
        let cpuBefore = cpuSeconds(pid: serve.processIdentifier)
        try await Task.sleep(for: .seconds(idleSeconds))
        figures.idleCPUPercent = (cpuSeconds(pid: serve.processIdentifier) - cpuBefore) / idleSeconds * 100
        if let postgres = store as? PostgresBookStore {
            // pg_stat_database counts the whole database's transactions, each backend's reaching
            // it when the backend next commits a second later, within 10 s when idle, or when it
            // disconnects: the window starts 10 s after ready (the start's and the bench's own
            // work counted by then) and ends when serve has exited (its counts flushed). The
            // bench's first read is counted in the window (1); the pool's keep-alives are not
            // separated (a few).
            try await Task.sleep(for: .seconds(max(0, 10 - idleSeconds)))
            let before = try await databaseTransactions(postgres)
            let windowStart = ContinuousClock.now
            try await Task.sleep(for: .seconds(idleSeconds))
            serve.terminate()
            serve.waitUntilExit()
            let window = (ContinuousClock.now - windowStart).inSeconds
            try await Task.sleep(for: .seconds(1))
            let done = try await databaseTransactions(postgres) - before - 1
            figures.idleTransactionsPerSecond = Double(max(0, done)) / window
        }
        if serve.isRunning {
            serve.terminate()
            serve.waitUntilExit()
        }

        // status --limit 50 as an operator runs it: a new process each time, median of 5.
        var statusTimes: [Double] = []
        for _ in 0..<5 {
            let status = Process()
            status.executableURL = URL(fileURLWithPath: executable())
            status.arguments = ["status", "--limit", "50"]
            status.environment = environment
            status.standardOutput = FileHandle.nullDevice
            let start = ContinuousClock.now
            try status.run()
            status.waitUntilExit()
            statusTimes.append((ContinuousClock.now - start).inSeconds * 1000)
        }
        figures.statusMilliseconds = median(statusTimes)

        // An hour of virtual time in this process: every due poll answered "still processing".
        let hour = try await virtualHour(store: store, start: now)
        figures.rssBeforeHourMB = hour.before
        figures.rssAfterHourMB = hour.after
        figures.virtualHourPolls = hour.polls
        figures.virtualHourWallSeconds = hour.wall
        return figures
    }

    /// The watcher on the filled database for one virtual hour against an API that answers every
    /// status call with the Book still verifying (and every analytics call with a small body),
    /// at 5 requests/s: the memory the watcher's working set takes.
    static func virtualHour(store: any SQLStatementStore, start: Date) async throws -> (before: Double, after: Double, polls: Int, wall: Double) {
        let clock = ManualClock(start: start)
        var logger = Logger(label: "scale")
        logger.logLevel = .critical
        let client = OcrolusClient(
            configuration: OcrolusConfiguration(
                apiBaseURL: "http://scale",
                tokenURL: "http://scale/oauth/token",
                credentials: .init(clientID: "scale", clientSecret: "scale-secret")
            ),
            transport: StillProcessingAPI(),
            limiter: RateLimiter(rate: 5, burst: 25, clock: clock),
            clock: clock,
            logger: logger
        )
        let watcher = Watcher(
            store: store,
            client: client,
            clock: clock,
            configuration: WatcherConfiguration(),
            health: ServiceHealth(startedAt: start),
            logger: logger
        )
        let pid = ProcessInfo.processInfo.processIdentifier
        let before = residentMB(pid: pid)
        let wallStart = ContinuousClock.now
        let end = start.addingTimeInterval(3600)
        while clock.now() < end {
            try await VirtualTime.drive(clock) {
                try await watcher.pollDue()
                try await watcher.runAnalytics()
            }
            let next = [try await store.nextPollAt(), try await store.nextJobDueAt()].compactMap { $0 }.min() ?? end
            clock.advance(to: min(end, max(next, clock.now().addingTimeInterval(1))))
        }
        let polls = watcher.stats.polls.values.reduce(0, +)
        return (before, residentMB(pid: pid), polls, (ContinuousClock.now - wallStart).inSeconds)
    }
}

/// An Ocrolus that says every Book is still verifying one document, and has analytics ready.
struct StillProcessingAPI: HTTPTransport {
    func send(_ request: OutgoingRequest) async throws -> IncomingResponse {
        let json = [("Content-Type", "application/json")]
        if request.url.contains("oauth/token") {
            return IncomingResponse(status: 200, headers: json, body: Array(#"{"access_token":"t","expires_in":3600,"token_type":"Bearer"}"#.utf8))
        }
        if request.url.contains("/book/status") {
            let uuid = request.url.split(separator: "=").last.map(String.init) ?? ""
            let body =
                #"{"status":200,"message":"OK","response":{"book_uuid":"\#(uuid)","pk":1,"book_status":"VERIFYING","docs":[{"uuid":"d","pk":1,"status":"PROCESSING"}],"mixed_docs":[]}}"#
            return IncomingResponse(status: 200, headers: json, body: Array(body.utf8))
        }
        return IncomingResponse(status: 200, headers: json, body: Array(#"{"status":200,"response":{"summary":{}}}"#.utf8))
    }
}
