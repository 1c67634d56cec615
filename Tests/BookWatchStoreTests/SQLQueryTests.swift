import BookWatchStore
import Foundation
import Testing

@testable import BookWatchSQLite

/// Statements are written once and rendered per dialect: what differs must be only what the
/// dialect spells.
@Suite struct SQLQueryTests {
    static let query: SQLQuery = """
        UPDATE jobs SET due = \(.least)(due, \(Int64(5))), seen = \(.true), gone = \(.false), note = \(nil as String?)
        WHERE id IN \(list: [1, 2]) AND owner = \("a")
        """

    @Test func sqliteSpellsPlaceholdersAsQuestionMarksAndBooleansAsIntegers() {
        let (sql, binds) = Self.query.render(SQLiteDialect())
        #expect(sql == "UPDATE jobs SET due = MIN(due, ?), seen = 1, gone = 0, note = ?\nWHERE id IN (?, ?) AND owner = ?")
        #expect(binds == [.integer(5), .null, .integer(1), .integer(2), .text("a")])
    }

    @Test func postgresNumbersItsPlaceholdersInBindOrder() {
        let (sql, binds) = Self.query.render(PostgreSQLDialect())
        #expect(sql == "UPDATE jobs SET due = LEAST(due, $1), seen = TRUE, gone = FALSE, note = $2\nWHERE id IN ($3, $4) AND owner = $5")
        #expect(binds == [.integer(5), .null, .integer(1), .integer(2), .text("a")])
    }

    @Test func onlyAStatementWithAListVariesInLength() {
        #expect(Self.query.hasList)
        let plain: SQLQuery = "SELECT 1 WHERE x = \(1)"
        #expect(!plain.hasList)
    }

    @Test func locksAreSpelledOnlyWherePostgresNeedsThem() {
        let query: SQLQuery = "SELECT * FROM books WHERE uuid = \("u")\(.rowLock)"
        #expect(query.render(SQLiteDialect()).sql == "SELECT * FROM books WHERE uuid = ?")
        #expect(query.render(PostgreSQLDialect()).sql == "SELECT * FROM books WHERE uuid = $1 FOR UPDATE")
        let claim: SQLQuery = "SELECT id FROM inbox LIMIT 1\(.skipLocked)"
        #expect(claim.render(SQLiteDialect()).sql == "SELECT id FROM inbox LIMIT 1")
        #expect(claim.render(PostgreSQLDialect()).sql == "SELECT id FROM inbox LIMIT 1 FOR UPDATE SKIP LOCKED")
    }

    @Test func anEmptyListMatchesNothingAndJoinedQueriesNumberOnAcrossTheParts() {
        let empty: SQLQuery = "SELECT 1 WHERE x IN \(list: [Int]())"
        #expect(empty.render(PostgreSQLDialect()).sql == "SELECT 1 WHERE x IN (NULL)")
        let joined: SQLQuery = "SELECT \(1)" + ", \(2)" + " WHERE y = \(Data([0xff]))"
        let (sql, binds) = joined.render(PostgreSQLDialect())
        #expect(sql == "SELECT $1, $2 WHERE y = $3")
        #expect(binds == [.integer(1), .integer(2), .blob([0xff])])
    }

    @Test func aSetIsPaddedWithItsLastValueSoItsTextTakesFewShapes() {
        func rendered(_ values: [String]) -> (sql: String, binds: [SQLValue]) {
            let query: SQLQuery = "SELECT * FROM books WHERE uuid IN \(set: values) AND x NOT IN \(set: [7])"
            return query.render(SQLiteDialect())
        }
        let three = rendered(["a", "b", "c"])
        #expect(three.sql == "SELECT * FROM books WHERE uuid IN (?, ?, ?, ?) AND x NOT IN (?)")
        #expect(three.binds == [.text("a"), .text("b"), .text("c"), .text("c"), .integer(7)])
        #expect(rendered(["a", "b", "c", "d"]).sql == three.sql)
        #expect(rendered(["a", "b", "c", "d", "e"]).sql.components(separatedBy: "?").count - 1 == 9)
        #expect(SQLQuery.padded([]).isEmpty)
        #expect(SQLQuery.padded((1...1000).map { SQLValue.integer($0) }).count == 1024)
        let empty: SQLQuery = "SELECT 1 WHERE x IN \(set: [Int]())"
        #expect(empty.render(SQLiteDialect()).sql == "SELECT 1 WHERE x IN (NULL)")
        // A set's statement stays prepared; a list's does not.
        #expect(!("SELECT 1 WHERE x IN \(set: [1, 2, 3])" as SQLQuery).hasList)
    }

    @Test func aRowIsWrittenAsAListButStaysPrepared() {
        let query: SQLQuery = "INSERT INTO t (a, b) VALUES \(row: [.integer(1), .text("x")])"
        #expect(query.render(SQLiteDialect()).sql == "INSERT INTO t (a, b) VALUES (?, ?)")
        #expect(query.render(PostgreSQLDialect()).sql == "INSERT INTO t (a, b) VALUES ($1, $2)")
        #expect(query.render(SQLiteDialect()).binds == [.integer(1), .text("x")])
        #expect(!query.hasList)
    }

    @Test func sqliteRowsFindAColumnByItsNameInAnyCaseTheFirstOfEqualNamesWinning() {
        let columns = SQLiteColumns(["uuid", "State", "state", "n"])
        #expect(columns.index(of: "uuid") == 0)
        #expect(columns.index(of: "State") == 1)
        #expect(columns.index(of: "state") == 2)
        #expect(columns.index(of: "STATE") == 1)
        #expect(columns.index(of: "UUID") == 0)
        #expect(columns.index(of: "missing") == nil)
    }

    struct Row: SQLRow {
        var values: [String: SQLValue]
        func sqlValue(_ column: String) throws -> SQLValue {
            guard let value = values[column] else { throw StoreError(.corrupt, subject: column, detail: "missing") }
            return value
        }
    }

    @Test func rowsReadBooleansStoredEitherWayAndRefuseWhatTheyCannotRead() throws {
        let row = Row(values: ["a": .integer(1), "b": .boolean(false), "c": .null, "d": .text("x")])
        #expect(try row.bool("a"))
        #expect(try !row.bool("b"))
        #expect(try row.optionalBool("c") == nil)
        #expect(try row.optionalInt64("c") == nil)
        #expect(throws: StoreError.self) { try row.int64("d") }
        #expect(throws: StoreError.self) { try row.string("c") }
        #expect(throws: StoreError.self) { try row.string("missing") }
    }
}
