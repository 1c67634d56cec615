import BookWatchCore
import BookWatchStore
import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL store: several `bookwatch serve` replicas share one database.
///
/// Coordination happens in the database only. Every transition locks its Book's row
/// (`SELECT ... FOR UPDATE`), so transitions of one Book are serialised across replicas; work is
/// claimed with `FOR UPDATE SKIP LOCKED` and a lease, so two replicas never take the same poll,
/// inbox row or analytics job while the lease holds, and a dead replica's claims lapse. The
/// schema and its decisions are those of the SQLite store (`TransitionPlan`); the conformance
/// suite runs the same cases against both.
///
/// ```swift
/// let store = try await PostgresBookStore.open(url: "postgres://bookwatch:secret@127.0.0.1:5432/bookwatch")
/// defer { Task { try await store.close() } }
/// ```
public final class PostgresBookStore: BookStore {
    /// The poll schedule transitions use.
    public let schedule: PollSchedule
    /// The database, without its password (safe to log and show in errors).
    public let location: String
    /// The schema of bookwatch's own (`?schema=`), when the URL names one.
    package let schema: String?
    let client: PostgresClient
    let logger: Logger
    /// The random source of poll jitter (injected: a seed governs it).
    public let random: @Sendable () -> Double
    private let runner: Task<Void, Never>

    private init(
        client: PostgresClient,
        location: String,
        schema: String?,
        schedule: PollSchedule,
        logger: Logger,
        random: @escaping @Sendable () -> Double
    ) {
        self.client = client
        self.location = location
        self.schema = schema
        self.schedule = schedule
        self.logger = logger
        self.random = random
        runner = Task { await client.run() }
    }

    /// Connects to `url` (`postgres://user:password@host:port/database`, optional
    /// `?sslmode=disable|prefer|require` and `&schema=NAME` to keep bookwatch's tables in a schema
    /// of their own, created when missing), and applies pending migrations under an advisory lock,
    /// so replicas starting together migrate once.
    ///
    /// - Throws: `StoreError` `.unavailable` naming the database (never the password).
    public static func open(
        url: String,
        schedule: PollSchedule = PollSchedule(),
        maximumConnections: Int = 16,
        logger: Logger = Logger(label: "bookwatch.postgres"),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) async throws -> PostgresBookStore {
        let address = try PostgresAddress(url)
        try await checkReachable(address, logger: logger)
        var configuration = PostgresClient.Configuration(
            host: address.host,
            port: address.port,
            username: address.user,
            password: address.password,
            database: address.database,
            tls: address.tls
        )
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        if let schema = address.schema { configuration.options.additionalStartupParameters = [("search_path", schema)] }
        let store = PostgresBookStore(
            client: PostgresClient(configuration: configuration, backgroundLogger: logger),
            location: address.redacted,
            schema: address.schema,
            schedule: schedule,
            logger: logger,
            random: random
        )
        do {
            try await store.migrate(schema: address.schema)
        } catch {
            try? await store.close()
            throw error
        }
        return store
    }

    /// One direct connection first: a wrong host, port or password fails at once with the server's
    /// own reason (the pool would retry quietly until a timeout).
    static func checkReachable(_ address: PostgresAddress, logger: Logger) async throws {
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch address.tlsMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
            let connection = try await PostgresConnection.connect(
                configuration: .init(
                    host: address.host,
                    port: address.port,
                    username: address.user,
                    password: address.password,
                    database: address.database,
                    tls: tls
                ),
                id: 0,
                logger: logger
            )
            try await connection.close()
        } catch let error as PSQLError {
            let reason = error.serverInfo?[.message] ?? "\(error.code)"
            let underlying = error.underlying.map { ": \($0)" } ?? ""
            throw StoreError(.unavailable, subject: address.redacted, detail: "cannot connect (\(reason)\(underlying))")
        } catch {
            throw StoreError(.unavailable, subject: address.redacted, detail: "cannot connect (\(error))")
        }
    }

    /// Ends the client's connections; later calls fail.
    public func close() async throws {
        runner.cancel()
        await runner.value
    }

    // MARK: transactions

    /// Runs `body` in a transaction on one pooled connection, for work that must be atomic.
    func transaction<T: Sendable>(
        timeout: Int = PostgresBookStore.callTimeout,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await onConnection(atomic: true, timeout: timeout, body)
    }

    /// Runs `body` on one pooled connection without `BEGIN`/`COMMIT`: a single statement commits
    /// by itself, and several reads see what they would see in a READ COMMITTED transaction anyway,
    /// without the two extra round trips.
    func connection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await onConnection(atomic: false, body)
    }

    /// A serialization failure or deadlock (another replica's transaction won) is retried; errors
    /// become `StoreError`s; a connection that does not come in time fails the call.
    private func onConnection<T: Sendable>(
        atomic: Bool,
        timeout: Int = PostgresBookStore.callTimeout,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withTimeout(seconds: timeout) {
                    try await self.client.withConnection { connection in
                        guard atomic else { return try await body(connection) }
                        try await connection.query("BEGIN", logger: self.logger)
                        do {
                            let value = try await body(connection)
                            try await connection.query("COMMIT", logger: self.logger)
                            return value
                        } catch {
                            // Rolled back even when this task is cancelled (the call timed out): a
                            // cancelled ROLLBACK would hand the connection back to the pool inside an
                            // open transaction, whose row locks (an inbox row's claim) and later
                            // statements would then never commit. If it cannot be rolled back, the
                            // connection is closed so the pool does not reuse it.
                            let logger = self.logger
                            await Task.detached {
                                do { _ = try await connection.query("ROLLBACK", logger: logger) } catch { try? await connection.close() }
                            }.value
                            throw error
                        }
                    }
                }
            } catch let error as PSQLError where Self.isRetryable(error) && attempt < 5 {
                continue
            } catch {
                // The caller was cancelled (shutdown): whatever PostgresNIO answered (a cancelled
                // query or connection request), it is a cancellation, as SQLite's GRDB says, which
                // callers stop on quietly. A COMMIT already sent may still have landed: every
                // write is fenced by its claim or idempotent, so the next start finds it done.
                if Task.isCancelled { throw CancellationError() }
                throw storeError(error)
            }
        }
    }

    /// Fails a call that cannot get a connection in time (database down) instead of waiting
    /// forever: a webhook then gets its 503 while Ocrolus still waits for an answer.
    func withTimeout<T: Sendable>(
        seconds: Int = PostgresBookStore.callTimeout,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw StoreError(.unavailable, subject: self.location, detail: "no answer within \(seconds) s")
            }
            return value
        }
    }

    /// Longest wait for one transaction, connection included.
    public static let callTimeout = 10
    /// Longest wait for the migrations, the advisory lock included (other replicas may be migrating).
    static let migrationTimeout = 120

    /// Rows of one query, read in full.
    static func rows(
        _ connection: PostgresConnection,
        _ query: PostgresQuery,
        _ logger: Logger
    ) async throws
        -> [PostgresRandomAccessRow]
    {
        try await connection.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
    }

    static func isRetryable(_ error: PSQLError) -> Bool {
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"  // serialization_failure, deadlock_detected
    }

    /// PostgreSQL's errors as `StoreError` kinds, naming the database without its password.
    func storeError(_ error: any Error) -> any Error {
        if error is StoreError || error is CancellationError { return error }
        guard let error = error as? PSQLError else {
            return StoreError(.unavailable, subject: location, detail: String(describing: error))
        }
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else {
            return StoreError(.unavailable, subject: location, detail: "\(error.code)")
        }
        let message = error.serverInfo?[.message] ?? ""
        switch state {
        case "23505":
            return StoreError(.duplicate, subject: error.serverInfo?[.constraintName] ?? "row", detail: "already stored")
        case "25006", "42501":
            return StoreError(.readOnly, subject: location, detail: "\(state) \(message)")
        default:
            return StoreError(.unavailable, subject: location, detail: "\(state) \(message)")
        }
    }
}

extension PostgresRandomAccessRow {
    /// The value of column `name`, decoded.
    func value<T: PostgresDecodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        try self[name].decode(T.self)
    }
}

extension PostgresBookStore {
    /// Reads `url` as `open` does, without connecting: the command line checks a URL option
    /// before it runs (a usage error, not a failed connection).
    /// - Throws: `StoreError` `.invalidLocation` saying what is wrong.
    public static func checkURL(_ url: String) throws(StoreError) { _ = try PostgresAddress(url) }
}

/// The parts of a `postgres://` URL.
struct PostgresAddress: Sendable {
    var user: String
    var password: String?
    var host: String
    var port: Int
    var database: String
    var tlsMode: TLSMode
    enum TLSMode { case disable, prefer, require }
    var tls: PostgresClient.Configuration.TLS {
        switch tlsMode {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
    }
    /// A schema of bookwatch's own (`?schema=`), first on the search path.
    var schema: String?

    /// The URL without its password.
    var redacted: String { "postgres://\(user)@\(host):\(port)/\(database)" + (schema.map { "?schema=\($0)" } ?? "") }

    /// True for the values `BOOKWATCH_DATABASE` takes to mean PostgreSQL.
    static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    init(_ text: String) throws(StoreError) {
        guard Self.isPostgresURL(text), let components = URLComponents(string: text), let host = components.host, !host.isEmpty
        else {
            throw StoreError(
                .invalidLocation,
                subject: "BOOKWATCH_DATABASE",
                detail: "expected postgres://user:password@host:port/database"
            )
        }
        guard let user = components.user, !user.isEmpty else {
            throw StoreError(.invalidLocation, subject: "BOOKWATCH_DATABASE", detail: "the postgres:// URL names no user")
        }
        let database = String(components.path.drop { $0 == "/" })
        self.user = user.removingPercentEncoding ?? user
        password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.host = host
        port = components.port ?? 5432
        self.database = database.isEmpty ? self.user : database
        schema = components.queryItems?.first { $0.name == "schema" }?.value
        if let schema, schema.isEmpty || !schema.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
            throw StoreError(.invalidLocation, subject: "BOOKWATCH_DATABASE", detail: "schema '\(schema)' must be letters, digits and _")
        }
        let mode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        switch mode {
        case "disable": tlsMode = .disable
        case "prefer", "allow": tlsMode = .prefer
        case "require", "verify-ca", "verify-full": tlsMode = .require
        default:
            throw StoreError(.invalidLocation, subject: "BOOKWATCH_DATABASE", detail: "sslmode '\(mode)' is not disable, prefer or require")
        }
    }
}
