/// What differs between the SQL the two stores speak, and nothing else: statements are written
/// once (`SQLQuery`) and each store renders them in its dialect. The shape follows vapor/sql-kit's
/// `SQLDialect` (bind placeholders, boolean literals, upsert and locking clauses), cut to what
/// bookwatch's statements use; see docs/decisions.md ("One set of statements").
package protocol SQLDialect: Sendable {
    /// For logs and errors: `sqlite` or `postgresql`.
    var name: String { get }
    /// The placeholder of the bind at `position` (1-based): `?` or `$1`.
    func bindPlaceholder(at position: Int) -> String
    /// A boolean literal: `1`/`0` (SQLite stores booleans as integers) or `TRUE`/`FALSE`.
    func literalBoolean(_ value: Bool) -> String
    /// The two-argument minimum and maximum: SQLite's scalar `MIN`/`MAX`, PostgreSQL's `LEAST`/`GREATEST`.
    /// They differ on NULL (SQLite's answers NULL, PostgreSQL's ignores it): use them on columns
    /// that are not NULL where they are read, or wrap the column in `COALESCE`.
    var leastFunction: String { get }
    var greatestFunction: String { get }
    /// Appended to a `SELECT` that locks the rows it reads until the transaction ends (PostgreSQL
    /// `FOR UPDATE`); empty where the transaction already excludes every other writer (SQLite).
    var rowLock: String { get }
    /// Appended to a `SELECT` that claims work replicas share: rows another transaction holds are
    /// skipped instead of waited for (PostgreSQL `FOR UPDATE SKIP LOCKED`); empty in SQLite.
    var skipLocked: String { get }
    /// A hint naming the index a query must walk (SQLite's `INDEXED BY`, which its planner
    /// otherwise misses for the due-poll queries); empty where the planner needs none.
    func indexedBy(_ index: String) -> String
    /// The database's own clock in microseconds since 1970, as an integer expression (the shared
    /// rate budget decides on one clock, not on each replica's).
    var nowMicroseconds: String { get }
    /// Selected first in a transaction that takes a lock every replica needs: it bounds how long
    /// the transaction waits for that lock and how long it may hold it idle (a frozen or cut-off
    /// replica), so one stuck process cannot stop the others (PostgreSQL `set_config(...)`); `1`
    /// where a transaction cannot stall holding a lock (SQLite's busy timeout already bounds it).
    var boundedLockWaits: String { get }
}

/// The keywords a statement names and its dialect spells (`\(.least)` in an `SQLQuery`).
package enum SQLKeyword: Sendable, Equatable {
    case least, greatest
    case `true`, `false`
    case rowLock, skipLocked
    case indexedBy(String)
    case nowMicroseconds, boundedLockWaits

    func spelled(in dialect: some SQLDialect) -> String {
        switch self {
        case .least: dialect.leastFunction
        case .greatest: dialect.greatestFunction
        case .true: dialect.literalBoolean(true)
        case .false: dialect.literalBoolean(false)
        case .rowLock: dialect.rowLock
        case .skipLocked: dialect.skipLocked
        case .indexedBy(let index): dialect.indexedBy(index)
        case .nowMicroseconds: dialect.nowMicroseconds
        case .boundedLockWaits: dialect.boundedLockWaits
        }
    }
}

/// SQLite's dialect (the single-node store).
package struct SQLiteDialect: SQLDialect {
    /// SQLite's dialect.
    package init() {}
    /// `sqlite`.
    package var name: String { "sqlite" }
    /// `?` for every bind.
    package func bindPlaceholder(at position: Int) -> String { "?" }
    /// `1` or `0`.
    package func literalBoolean(_ value: Bool) -> String { value ? "1" : "0" }
    /// SQLite's scalar `MIN`.
    package var leastFunction: String { "MIN" }
    /// SQLite's scalar `MAX`.
    package var greatestFunction: String { "MAX" }
    /// Nothing: the write transaction excludes every other writer.
    package var rowLock: String { "" }
    /// Nothing, for the same reason.
    package var skipLocked: String { "" }
    /// ` INDEXED BY index`.
    package func indexedBy(_ index: String) -> String { " INDEXED BY \(index)" }
    /// From the Julian day (SQLite keeps milliseconds).
    package var nowMicroseconds: String { "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)" }
    /// `1`: nothing to set.
    package var boundedLockWaits: String { "1" }
}

/// PostgreSQL's dialect (the store replicas share).
package struct PostgreSQLDialect: SQLDialect {
    /// PostgreSQL's dialect.
    package init() {}
    /// `postgresql`.
    package var name: String { "postgresql" }
    /// `$1`, `$2`...
    package func bindPlaceholder(at position: Int) -> String { "$\(position)" }
    /// `TRUE` or `FALSE`.
    package func literalBoolean(_ value: Bool) -> String { value ? "TRUE" : "FALSE" }
    /// `LEAST`.
    package var leastFunction: String { "LEAST" }
    /// `GREATEST`.
    package var greatestFunction: String { "GREATEST" }
    /// ` FOR UPDATE`.
    package var rowLock: String { " FOR UPDATE" }
    /// ` FOR UPDATE SKIP LOCKED`.
    package var skipLocked: String { " FOR UPDATE SKIP LOCKED" }
    /// Nothing: the planner picks the index itself.
    package func indexedBy(_ index: String) -> String { "" }
    /// `clock_timestamp()` (the moment of the statement, not of the transaction's start).
    package var nowMicroseconds: String { "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)" }
    /// A lock waited for at most 2 s, the transaction idle at most 10 s (then ended by the server).
    package var boundedLockWaits: String {
        "set_config('lock_timeout', '2s', true), set_config('idle_in_transaction_session_timeout', '10s', true)"
    }
}
