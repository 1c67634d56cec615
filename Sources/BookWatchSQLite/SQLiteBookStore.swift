import BookWatchCore
import BookWatchStore
import Foundation
import GRDB
import Synchronization

/// The SQLite store: one `DatabasePool` (WAL, `synchronous=FULL`) for the process lifetime.
///
/// WAL lets `bookwatch status` read while `serve` writes; `synchronous=FULL` makes a commit
/// durable before it returns, which the webhook ingress relies on before it answers 200.
///
/// ```swift
/// let store = try SQLiteBookStore(path: "bookwatch.sqlite")
/// let outcome = try await store.apply(.command(.track(.operator)), to: uuid, at: .now, options: .init())
/// ```
public final class SQLiteBookStore: BookStore {
    /// The database file.
    public let path: String
    let pool: DatabasePool
    /// The poll schedule transitions use.
    public let schedule: PollSchedule
    /// Draws from `0..<1` for schedule jitter; injected so tests are deterministic.
    public let random: @Sendable () -> Double
    /// How many transactions are running now: a virtual clock advances only when none is (the
    /// database works on threads of its own, which the clock's driver cannot otherwise see).
    public let activity = StoreActivity()
    /// Runs each transaction on the calling thread instead of awaiting GRDB's queue: for the
    /// deterministic simulation only, where one chain of work runs at a time and a blocked
    /// cooperative thread costs nothing (it saves two thread hops per transaction). Never in
    /// `serve`: it would block the cooperative pool while SQLite waits for a lock.
    let inline: Bool

    /// Opens (creating when missing) the database at `path` and applies pending migrations.
    ///
    /// - Throws: `StoreError` of kind `.missingDirectory`, `.readOnly` or `.unavailable`,
    ///   naming the path.
    public init(
        path: String,
        schedule: PollSchedule = PollSchedule(),
        busyTimeout: TimeInterval = 5,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        inline: Bool = false
    ) throws(StoreError) {
        self.path = path
        self.inline = inline
        self.schedule = schedule
        self.random = random
        try Self.checkLocation(path)
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.label = "bookwatch"
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // GRDB sets synchronous=NORMAL on the WAL writer after `prepareDatabase`; raise it here.
            // Inline (the simulation, one process, every transaction on the writer's connection):
            // no flush and the file's locks held for good, which cost two thirds of the system
            // calls of a chaos step; a simulated crash never loses the process, so durability is
            // not what it tests (the conformance suite runs the real settings).
            try pool.writeWithoutTransaction { db in
                try db.execute(
                    sql: inline
                        ? "PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE; PRAGMA temp_store = MEMORY" : "PRAGMA synchronous = FULL"
                )
            }
            try Self.migrator.migrate(pool)
        } catch let error as DatabaseError {
            throw Self.storeError(error, path: path)
        } catch {
            throw StoreError(.unavailable, subject: path, detail: String(describing: error))
        }
    }

    /// Closes the pool; later calls fail. Safe to call once on shutdown.
    public func close() throws {
        try pool.close()
    }

    /// Rows inserted, updated or deleted on the writer's connection so far (committed or not;
    /// every write is there): when it has not moved, no row has changed (the chaos search's safety
    /// check reads the store only then; most of a watcher's idle turns are claims that find nothing).
    public func rowsChangedCount() throws -> Int {
        try pool.writeWithoutTransaction { $0.totalChangesCount }
    }

    /// The `synchronous` pragma of the writer connection (2 means FULL).
    public func writerSynchronousLevel() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// Turns SQLite's `query_only` on or off on the writer connection: while on, every write fails
    /// with SQLITE_READONLY, exactly as on a read-only disk (used by tests and maintenance).
    public func setWriterQueryOnly(_ on: Bool) throws {
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = \(on ? "ON" : "OFF")") }
    }

    /// The journal mode as SQLite reports it ("wal").
    public func journalMode() throws -> String {
        // Inline, the writer holds the file's lock for good: a reader connection would wait it out.
        let body = { (db: Database) in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
        return try inline ? Self.readHere(pool, body) : pool.read(body)
    }

    /// Clear errors before SQLite's generic "unable to open database file".
    static func checkLocation(_ path: String) throws(StoreError) {
        let fileManager = FileManager.default
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw StoreError(.missingDirectory, subject: directory, detail: "create it or choose another --database")
        }
        if fileManager.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue {
                throw StoreError(.unavailable, subject: path, detail: "is a directory, not a database file")
            }
            if !fileManager.isWritableFile(atPath: path) {
                throw StoreError(.readOnly, subject: path, detail: "the file is not writable")
            }
        }
        // WAL needs to create -wal and -shm files beside the database.
        if !fileManager.isWritableFile(atPath: directory) {
            throw StoreError(.readOnly, subject: path, detail: "directory \(directory) is not writable")
        }
    }

    /// Maps SQLite's result codes onto `StoreError` kinds.
    static func storeError(_ error: DatabaseError, path: String) -> StoreError {
        switch error.resultCode {
        case .SQLITE_CONSTRAINT
        where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE
            || error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY:
            return StoreError(.duplicate, subject: error.message ?? "row", detail: "already stored")
        case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN:
            return StoreError(.readOnly, subject: path, detail: error.message ?? "\(error.resultCode)")
        case .SQLITE_FULL:
            return StoreError(.unavailable, subject: path, detail: "disk full")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return StoreError(.unavailable, subject: path, detail: "locked by another process past the timeout")
        default:
            return StoreError(.unavailable, subject: path, detail: error.description)
        }
    }

    /// Runs a write transaction, mapping database errors.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        activity.beginWrite()
        defer { activity.end() }
        do {
            return inline ? try Self.writeHere(pool, body) : try await pool.write(body)
        } catch let error as DatabaseError {
            throw Self.storeError(error, path: path)
        }
    }

    /// GRDB's blocking `write`, on the caller's thread (`inline`).
    private static func writeHere<T>(_ pool: DatabasePool, _ body: (Database) throws -> T) throws -> T { try pool.write(body) }

    /// On the writer's connection, outside a transaction: the writer's serial queue runs the
    /// whole read, so no write can come between its statements and a transaction would isolate
    /// nothing; the writer's statements and pages are already cached (a reader's `BEGIN`,
    /// `COMMIT` and hand-out from GRDB's pool were a tenth of a chaos run). Not read-only: a
    /// `.read` operation that wrote would pass here and fail in `serve` (each is a `SELECT`).
    private static func readHere<T>(_ pool: DatabasePool, _ body: (Database) throws -> T) throws -> T {
        try pool.writeWithoutTransaction(body)
    }

    /// Runs a read transaction, mapping database errors.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        activity.begin()
        defer { activity.end() }
        do {
            return inline ? try Self.readHere(pool, body) : try await pool.read(body)
        } catch let error as DatabaseError {
            throw Self.storeError(error, path: path)
        }
    }
}

/// A count of a store's transactions in flight (see `SQLiteBookStore.activity`).
public final class StoreActivity: Sendable {
    private let running = Atomic<Int>(0)

    /// No transaction running yet.
    public init() {}

    private let writes = Atomic<Int>(0)

    func begin() { running.add(1, ordering: .acquiringAndReleasing) }
    func end() { running.subtract(1, ordering: .acquiringAndReleasing) }
    func beginWrite() {
        writes.add(1, ordering: .relaxed)
        begin()
    }

    /// Write transactions begun so far (each one the single writer's turn: what the webhook
    /// door's group commits wait behind).
    public var writesBegun: Int { writes.load(ordering: .relaxed) }

    /// Whether a transaction is running now.
    public var isBusy: Bool { running.load(ordering: .acquiring) > 0 }
}
