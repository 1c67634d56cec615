import BookWatchStore
import Foundation
import GRDB

/// One row of a statement's answer: its values, and the statement's columns by name, built once
/// per statement run (GRDB's `Row` finds a column by a case-insensitive scan, lowercasing each
/// name at every lookup: a tenth of a chaos run's time went there).
struct SQLiteRow: SQLRow, Sendable {
    let columns: SQLiteColumns
    let values: [DatabaseValue]

    /// The column's value as SQLite stored it.
    func sqlValue(_ column: String) throws -> SQLValue {
        guard let index = columns.index(of: column), values.indices.contains(index) else {
            throw StoreError(.corrupt, subject: "column \(column)", detail: "not in the row")
        }
        return try values[index].sqlValue(column)
    }
}

/// A statement's column names, by name: the first of equal names wins, and a name in another
/// case is found by a scan (as GRDB finds it; the store's code names columns as its SQL does).
final class SQLiteColumns: Sendable {
    private let names: [String]
    private let exact: [String: Int]

    init(_ names: [String]) {
        self.names = names
        var exact: [String: Int] = [:]
        for (index, name) in names.enumerated() where exact[name] == nil { exact[name] = index }
        self.exact = exact
    }

    func index(of column: String) -> Int? {
        if let index = exact[column] { return index }
        let folded = column.lowercased()
        return names.firstIndex { $0.lowercased() == folded }
    }
}

extension DatabaseValue {
    /// The value as SQLite stored it, for the store's rows.
    func sqlValue(_ column: String) throws -> SQLValue {
        switch storage {
        case .null: return .null
        case .int64(let int): return .integer(int)
        case .string(let text): return .text(text)
        case .blob(let data): return .blob([UInt8](data))
        case .double: throw StoreError(.corrupt, subject: "column \(column)", detail: "a real number where an integer belongs")
        }
    }
}

extension StatementArguments {
    /// Positional arguments from values already converted, through GRDB's initialiser for
    /// existentials. Its initialiser for `some DatabaseValueConvertible` maps through a key path
    /// over the generic type, which the runtime instantiates at every call (demangling included):
    /// a tenth of the group commit's own time in the ingress's profile.
    init(values: [DatabaseValue]) {
        self.init(values.map { $0 as (any DatabaseValueConvertible)? })
    }
}

extension SQLValue {
    /// The value as GRDB binds it (a boolean as 1 or 0).
    var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .integer(let int): int.databaseValue
        case .text(let text): text.databaseValue
        case .blob(let bytes): Data(bytes).databaseValue
        case .boolean(let bool): bool.databaseValue
        }
    }
}

extension Database {
    /// Runs one statement written for both stores (cached: prepared once per connection); answers
    /// its rows when it `reads`, and throws its `required` error when it must find one and did not.
    @discardableResult
    func run(_ step: SQLStep) throws -> [SQLiteRow] {
        let (sql, binds) = step.query.render(SQLiteDialect())
        // Prepared once per connection, except a statement whose text varies with a list's length
        // (the cache would keep one per length for ever).
        let statement = step.query.hasList ? try makeStatement(sql: sql) : try cachedStatement(sql: sql)
        let arguments = StatementArguments(values: binds.map(\.databaseValue))
        guard step.reads else {
            try statement.execute(arguments: arguments)
            return []
        }
        var columns: SQLiteColumns?
        var rows: [SQLiteRow] = []
        // A cursor, not a sequence: its `forEach` steps SQLite once per row (GRDB's loop).
        // swift-format-ignore: ReplaceForEachWithForLoop
        try ValuesCursor(statement, arguments: arguments).forEach { values in
            let index = columns ?? SQLiteColumns(statement.columnNames)
            columns = index
            rows.append(SQLiteRow(columns: index, values: values))
        }
        if rows.isEmpty, let required = step.required { throw required }
        return rows
    }
}

/// A statement's rows as their values, read straight from SQLite's columns: GRDB's cursor of
/// `Row`s (its set-up per statement run, and a lazy map over each row copied into an array)
/// was 8% of a chaos search. Stepping, errors and cancellation stay GRDB's (`DatabaseCursor`'s
/// `forEach`). No reset when it ends: `run` reads to the end or to a failed step, and GRDB drops
/// a statement whose step failed from its caches (it cannot be reused), so nothing is left
/// mid-step.
final class ValuesCursor: DatabaseCursor {
    typealias Element = [DatabaseValue]
    let _statement: Statement
    var _isDone = false
    private let columnCount: CInt

    init(_ statement: Statement, arguments: StatementArguments) throws {
        _statement = statement
        columnCount = CInt(statement.columnCount)
        try statement.setArguments(arguments)  // validates, resets and binds, as GRDB's cursors do
    }

    func _element(sqliteStatement: SQLiteStatement) -> [DatabaseValue] {
        var values: [DatabaseValue] = []
        values.reserveCapacity(Int(columnCount))
        var index: CInt = 0
        while index < columnCount {
            values.append(DatabaseValue(sqliteStatement: sqliteStatement, index: index))
            index += 1
        }
        return values
    }
}

extension SQLiteBookStore: RateBudgetStore {}

extension SQLiteBookStore {
    /// `InboxStore.appendToInbox(batch:)` for the webhook door's group commit on SQLite: the
    /// shared statement's insert (same columns, same `ON CONFLICT (request_id) DO NOTHING`, same
    /// answers, the conformance suite holds both to them), prepared once for the batch with each
    /// row's values bound to it directly and the new row's id read from SQLite rather than from a
    /// `RETURNING` row: no statement text rendered and looked up, no row decoded, per delivery.
    /// (A fifth of the route's CPU is this transaction.)
    public func appendToInbox(batch: [InboxDelivery]) async throws -> [InboxAppendOutcome] {
        guard !batch.isEmpty else { return [] }
        return try await write { db in
            let statement = try db.cachedStatement(sql: Self.inboxInsert)
            var outcomes: [InboxAppendOutcome] = []
            outcomes.reserveCapacity(batch.count)
            for delivery in batch {
                statement.setUncheckedArguments(StatementArguments(values: delivery.insertedValues.map(\.databaseValue)))
                try statement.execute()
                outcomes.append(db.changesCount > 0 ? .stored(id: db.lastInsertedRowID) : .duplicate)
            }
            return outcomes
        }
    }

    private static let inboxInsert = """
        INSERT INTO webhook_inbox (\(InboxDelivery.insertedColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (request_id) DO NOTHING
        """
}

extension SQLiteBookStore: SQLStatementStore {
    /// One node owns the database: every claim in it is this process's.
    public var ownsWholeDatabase: Bool { true }

    /// Runs an operation written for both stores: reads in a read transaction, writes in the
    /// single writer's transaction.
    public func perform<Answer: Sendable>(_ operation: StoreOperation<Answer>) async throws -> Answer {
        let body: @Sendable (Database) throws -> Answer = { db in
            try StoreOperation<Answer>.answer(operation.start) { try db.run($0) }
        }
        switch operation.kind {
        case .read: return try await read(body)
        case .statement, .transaction: return try await write(body)
        }
    }
}
