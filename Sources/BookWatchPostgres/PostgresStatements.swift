import BookWatchStore
import Foundation
import Logging
import PostgresNIO

extension PostgresRandomAccessRow: SQLRow {
    /// The column's value, decoded by its PostgreSQL type.
    package func sqlValue(_ column: String) throws -> SQLValue {
        guard contains(column) else { throw StoreError(.corrupt, subject: "column \(column)", detail: "not in the row") }
        let cell = self[column]
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8, .int4, .int2: return .integer(try cell.decode(Int64.self))
        case .bool: return .boolean(try cell.decode(Bool.self))
        case .bytea: return .blob(Array(try cell.decode(ByteBuffer.self).readableBytesView))
        case .text, .varchar, .name, .bpchar: return .text(try cell.decode(String.self))
        default: throw StoreError(.corrupt, subject: "column \(column)", detail: "unexpected type \(cell.dataType)")
        }
    }
}

extension SQLQuery {
    /// The statement in PostgreSQL's dialect, its values bound.
    var postgres: PostgresQuery {
        let (sql, values) = render(PostgreSQLDialect())
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .null: binds.appendNull()
            case .integer(let int): binds.append(int)
            case .text(let text): binds.append(text)
            case .blob(let bytes): binds.append(ByteBuffer(bytes: bytes))
            case .boolean(let bool): binds.append(bool)
            }
        }
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }
}

extension PostgresBookStore {
    /// Runs one statement written for both stores; answers its rows when it `reads`, and throws
    /// its `required` error when it must find one and did not.
    @discardableResult
    static func run(_ step: SQLStep, on connection: PostgresConnection, _ logger: Logger) async throws -> [PostgresRandomAccessRow] {
        guard step.reads else {
            try await connection.query(step.query.postgres, logger: logger)
            return []
        }
        let rows = try await Self.rows(connection, step.query.postgres, logger)
        if rows.isEmpty, let required = step.required { throw required }
        return rows
    }

}

extension PostgresBookStore: RateBudgetStore {}

extension PostgresBookStore: SQLStatementStore {
    /// Replicas share the database: a claim may be another live replica's.
    public var ownsWholeDatabase: Bool { false }

    /// Runs an operation written for both stores: a transaction only when it needs one.
    public func perform<Answer: Sendable>(_ operation: StoreOperation<Answer>) async throws -> Answer {
        let body: @Sendable (PostgresConnection) async throws -> Answer = { c in
            var next = operation.start
            while true {
                switch next {
                case .done(let answer): return answer
                case .run(let step, let then): next = try then(try await Self.run(step, on: c, self.logger))
                }
            }
        }
        switch operation.kind {
        case .read, .statement: return try await connection(body)
        case .transaction: return try await transaction(body)
        }
    }
}
