import BookWatchStore
import Foundation
import GRDB

extension Row: SQLRow {
    /// The column's value as SQLite stored it.
    package func sqlValue(_ column: String) throws -> SQLValue {
        guard hasColumn(column) else { throw StoreError(.corrupt, subject: "column \(column)", detail: "not in the row") }
        let value: DatabaseValue = self[column]
        switch value.storage {
        case .null: return .null
        case .int64(let int): return .integer(int)
        case .string(let text): return .text(text)
        case .blob(let data): return .blob([UInt8](data))
        case .double: throw StoreError(.corrupt, subject: "column \(column)", detail: "a real number where an integer belongs")
        }
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
    func run(_ step: SQLStep) throws -> [Row] {
        let (sql, binds) = step.query.render(SQLiteDialect())
        // Prepared once per connection, except a statement whose text varies with a list's length
        // (the cache would keep one per length for ever).
        let statement = step.query.hasList ? try makeStatement(sql: sql) : try cachedStatement(sql: sql)
        let arguments = StatementArguments(binds.map(\.databaseValue))
        guard step.reads else {
            try statement.execute(arguments: arguments)
            return []
        }
        let rows = try Row.fetchAll(statement, arguments: arguments)
        if rows.isEmpty, let required = step.required { throw required }
        return rows
    }

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
