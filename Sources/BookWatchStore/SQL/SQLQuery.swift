import Foundation

/// A value bound to a statement, as both stores bind it.
package enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case text(String)
    case blob([UInt8])
    case boolean(Bool)
}

/// A Swift value a statement may bind.
package protocol SQLBindable: Sendable {
    var sqlValue: SQLValue { get }
}

extension Int: SQLBindable { package var sqlValue: SQLValue { .integer(Int64(self)) } }
extension Int64: SQLBindable { package var sqlValue: SQLValue { .integer(self) } }
extension String: SQLBindable { package var sqlValue: SQLValue { .text(self) } }
extension Bool: SQLBindable { package var sqlValue: SQLValue { .boolean(self) } }
extension Array: SQLBindable where Element == UInt8 { package var sqlValue: SQLValue { .blob(self) } }
extension Data: SQLBindable { package var sqlValue: SQLValue { .blob([UInt8](self)) } }
extension SQLValue: SQLBindable { package var sqlValue: SQLValue { self } }
extension Optional: SQLBindable where Wrapped: SQLBindable { package var sqlValue: SQLValue { self?.sqlValue ?? .null } }

/// One statement written once for both stores: literal SQL, bound values (`\(value)`),
/// keywords the dialect spells (`\(.least)`), lists (`IN \(list: values)`) and trusted fragments
/// (`\(unescaped:)`, for column lists derived from code, never from input). `render` turns it into
/// the text and binds of one dialect.
package struct SQLQuery: Sendable, ExpressibleByStringInterpolation {
    /// One part of a statement.
    package enum Piece: Sendable, Equatable {
        case sql(String)
        case bind(SQLValue)
        case keyword(SQLKeyword)
        case list([SQLValue])
        /// The values of a membership test (`IN`, `NOT IN`), padded with repeats of the last one
        /// to a power of two, so the statement's text takes a few shapes and stays prepared.
        case set([SQLValue])
        /// A row of values whose count the code fixes (every column of a table): written as a
        /// list, but its text never varies, so a store keeps it prepared.
        case row([SQLValue])
    }

    /// The parts, in order.
    package var pieces: [Piece]

    /// The most values one `IN` list binds (callers split longer ones), and the most rows one
    /// multi-row `INSERT` or `CASE` writes: both far under SQLite's 32,766 binds and PostgreSQL's
    /// 65,535.
    package static let valuesPerList = 1000
    /// The most rows one multi-row `INSERT` or `CASE` writes.
    package static let rowsPerStatement = 500

    /// True when the statement binds a list (its text varies with the list's length: a store does
    /// not keep such statements prepared).
    package var hasList: Bool { pieces.contains { if case .list = $0 { true } else { false } } }

    /// A statement with no binds.
    package init(stringLiteral value: String) { pieces = [.sql(value)] }

    /// A statement from its interpolation.
    package init(stringInterpolation: StringInterpolation) { pieces = stringInterpolation.pieces }

    /// Builds a statement: literal SQL, binds, keywords, lists and fragments.
    package struct StringInterpolation: StringInterpolationProtocol {
        var pieces: [Piece] = []

        /// An empty statement.
        package init(literalCapacity: Int, interpolationCount: Int) { pieces.reserveCapacity(interpolationCount * 2 + 1) }

        /// Literal SQL.
        package mutating func appendLiteral(_ literal: String) { pieces.append(.sql(literal)) }

        /// A bound value.
        package mutating func appendInterpolation(_ value: some SQLBindable) { pieces.append(.bind(value.sqlValue)) }

        /// An optional value: bound as NULL when nil.
        package mutating func appendInterpolation<Value: SQLBindable>(_ value: Value?) { pieces.append(.bind(value.sqlValue)) }

        /// A keyword the dialect spells.
        package mutating func appendInterpolation(_ keyword: SQLKeyword) { pieces.append(.keyword(keyword)) }

        /// `(?, ?, ...)` with one bind per value; `(NULL)` for none, which `IN` matches no row
        /// with (never use it after `NOT IN`: that matches none either). One bind per value: keep
        /// lists under `SQLQuery.valuesPerList` (callers chunk longer ones).
        package mutating func appendInterpolation(list values: [some SQLBindable]) { pieces.append(.list(values.map(\.sqlValue))) }

        /// The values of a membership test, `IN \(set: values)` or `NOT IN \(set: values)`: as
        /// `list`, but repeats of the last value pad it to a power of two (which neither test
        /// notices), so its statement's text repeats and a store keeps it prepared.
        package mutating func appendInterpolation(set values: [some SQLBindable]) { pieces.append(.set(SQLQuery.padded(values.map(\.sqlValue)))) }

        /// `(?, ?, ...)` for a row whose length the code fixes, never the data (a table's
        /// columns): kept prepared, unlike `list`.
        package mutating func appendInterpolation(row values: [SQLValue]) { pieces.append(.row(values)) }

        /// A trusted fragment, as is (column lists derived from code, never input).
        package mutating func appendInterpolation(unescaped fragment: String) { pieces.append(.sql(fragment)) }

        /// Another statement's parts.
        package mutating func appendInterpolation(_ query: SQLQuery) { pieces.append(contentsOf: query.pieces) }
    }

    /// `values` with repeats of the last one up to the next power of two (none for an empty list).
    package static func padded(_ values: [SQLValue]) -> [SQLValue] {
        guard let last = values.last else { return values }
        var size = 1
        while size < values.count { size *= 2 }
        return values + Array(repeating: last, count: size - values.count)
    }

    /// Appends another statement's pieces (for statements built in parts).
    package static func + (lhs: SQLQuery, rhs: SQLQuery) -> SQLQuery {
        var joined = lhs
        joined.pieces += rhs.pieces
        return joined
    }

    /// The text with the dialect's placeholders and keywords, and the binds in placeholder order.
    package func render(_ dialect: some SQLDialect) -> (sql: String, binds: [SQLValue]) {
        var sql = ""
        var binds: [SQLValue] = []
        for piece in pieces {
            switch piece {
            case .sql(let text): sql += text
            case .bind(let value):
                binds.append(value)
                sql += dialect.bindPlaceholder(at: binds.count)
            case .keyword(let keyword): sql += keyword.spelled(in: dialect)
            case .list(let values), .set(let values), .row(let values):
                guard !values.isEmpty else {
                    sql += "(NULL)"
                    continue
                }
                var placeholders: [String] = []
                for value in values {
                    binds.append(value)
                    placeholders.append(dialect.bindPlaceholder(at: binds.count))
                }
                sql += "(" + placeholders.joined(separator: ", ") + ")"
            }
        }
        return (sql, binds)
    }
}

/// A statement and what its store does with it: `reads`, its rows are handed back (a `SELECT`, or
/// a write with `RETURNING`); with `required`, it must answer at least one row, else the
/// transaction is rolled back with that error.
package struct SQLStep: Sendable {
    /// The statement.
    package var query: SQLQuery
    /// Whether its rows are handed back.
    package var reads: Bool
    /// The error to roll back with when it answers no row.
    package var required: StoreError?

    /// A step; `required` implies `reads`.
    package init(_ query: SQLQuery, reads: Bool = false, required: StoreError? = nil) {
        self.query = query
        self.reads = reads || required != nil
        self.required = required
    }
}

/// A row as a store read it, by column name; both stores' rows conform, so what a row means is
/// decoded once (`StoredBook(row:)` and the like).
package protocol SQLRow {
    /// The column's value, `.null` for SQL NULL; throws when the row has no such column or a
    /// value the store cannot read.
    func sqlValue(_ column: String) throws -> SQLValue
}

extension SQLRow {
    /// An integer column (a boolean reads as 1 or 0), nil for NULL.
    package func optionalInt64(_ column: String) throws -> Int64? {
        switch try sqlValue(column) {
        case .null: return nil
        case .integer(let value): return value
        case .boolean(let value): return value ? 1 : 0
        default: throw Self.unreadable(column, "an integer")
        }
    }

    /// An integer column that is not NULL.
    package func int64(_ column: String) throws -> Int64 {
        guard let value = try optionalInt64(column) else { throw Self.unreadable(column, "an integer, not NULL") }
        return value
    }

    /// An integer column as `Int`, nil for NULL.
    package func optionalInt(_ column: String) throws -> Int? { try optionalInt64(column).map { Int($0) } }

    /// An integer column as `Int`, not NULL.
    package func int(_ column: String) throws -> Int { Int(try int64(column)) }

    /// A text column, nil for NULL.
    package func optionalString(_ column: String) throws -> String? {
        switch try sqlValue(column) {
        case .null: return nil
        case .text(let value): return value
        default: throw Self.unreadable(column, "text")
        }
    }

    /// A text column that is not NULL.
    package func string(_ column: String) throws -> String {
        guard let value = try optionalString(column) else { throw Self.unreadable(column, "text, not NULL") }
        return value
    }

    /// SQLite stores booleans as integers, PostgreSQL as booleans: either reads.
    package func optionalBool(_ column: String) throws -> Bool? {
        switch try sqlValue(column) {
        case .null: return nil
        case .boolean(let value): return value
        case .integer(let value): return value != 0
        default: throw Self.unreadable(column, "a boolean")
        }
    }

    /// A boolean column that is not NULL.
    package func bool(_ column: String) throws -> Bool {
        guard let value = try optionalBool(column) else { throw Self.unreadable(column, "a boolean, not NULL") }
        return value
    }

    /// A blob column (text reads as its UTF-8).
    package func bytes(_ column: String) throws -> [UInt8] {
        switch try sqlValue(column) {
        case .blob(let value): return value
        case .text(let value): return Array(value.utf8)
        default: throw Self.unreadable(column, "a blob")
        }
    }

    static func unreadable(_ column: String, _ expected: String) -> StoreError {
        StoreError(.corrupt, subject: "column \(column)", detail: "expected \(expected)")
    }
}
