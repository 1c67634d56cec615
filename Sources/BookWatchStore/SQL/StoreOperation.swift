/// One store method written once for both stores: the statements it asks for, one at a time,
/// and the answer it builds from their rows. A store runs it with `SQLStatementStore.perform`
/// (GRDB's synchronous transaction or PostgresNIO's asynchronous one); `TransitionDriver` is the
/// same idea for `apply`.
public struct StoreOperation<Answer: Sendable>: Sendable {
    /// How a store wraps the statements.
    package enum Kind: Sendable {
        /// Reads only: SQLite's read transaction; PostgreSQL without `BEGIN` (each statement sees
        /// what a READ COMMITTED transaction would).
        case read
        /// One write statement (or several, each safe alone): SQLite's write transaction;
        /// PostgreSQL autocommit, without the two extra round trips.
        case statement
        /// Several statements that commit together.
        case transaction
    }

    /// The next statement and what follows from its rows, or the answer.
    package enum Next: Sendable {
        case run(SQLStep, then: @Sendable ([any SQLRow]) throws -> Next)
        case done(Answer)
    }

    /// How a store wraps the statements.
    package let kind: Kind
    /// The first statement and what follows.
    package let start: Next

    /// An operation starting with `start`.
    package init(_ kind: Kind, _ start: Next) {
        self.kind = kind
        self.start = start
    }

    /// One statement, its rows decoded into the answer.
    package init(_ kind: Kind, _ step: SQLStep, _ decode: @escaping @Sendable ([any SQLRow]) throws -> Answer) {
        self.init(kind, .run(step, then: { .done(try decode($0)) }))
    }

    /// `steps` run in order, their rows ignored, then `last`.
    package static func chain(_ steps: some Collection<SQLStep> & Sendable, then last: Next) -> Next {
        chainSlice(ArraySlice(steps), then: last)
    }

    /// The same over a slice: each step hands on the rest without copying it (copying made a
    /// long chain quadratic: the 5,000-Book fill took six times as long).
    private static func chainSlice(_ steps: ArraySlice<SQLStep>, then last: Next) -> Next {
        guard let first = steps.first else { return last }
        let rest = steps.dropFirst()
        return .run(first, then: { _ in chainSlice(rest, then: last) })
    }

    /// `steps` run in order, each row decoded as it comes, then `then` with all of them (a long
    /// list read in chunks, each under `SQLQuery.valuesPerList`).
    package static func collect<Value: Sendable>(
        _ steps: [SQLStep],
        _ decode: @escaping @Sendable (any SQLRow) throws -> Value,
        then: @escaping @Sendable ([Value]) throws -> Next,
        collected: [Value] = []
    ) throws -> Next {
        guard let first = steps.first else { return try then(collected) }
        let rest = Array(steps.dropFirst())
        return .run(first) { rows in try collect(rest, decode, then: then, collected: collected + (try rows.map(decode))) }
    }

    /// Runs `next` to its answer with `run` executing each statement (the stores' loop).
    package static func answer(_ next: Next, _ run: (SQLStep) throws -> [any SQLRow]) throws -> Answer {
        var next = next
        while true {
            switch next {
            case .done(let answer): return answer
            case .run(let step, let then): next = try then(try run(step))
            }
        }
    }
}

extension StoreOperation where Answer == Void {
    /// Write statements run in order, nothing read back.
    package init(_ kind: Kind, writes steps: [SQLStep]) {
        self.init(kind, Self.chain(steps[...]))
    }

    private static func chain(_ rest: ArraySlice<SQLStep>) -> Next { StoreOperation.chain(rest, then: .done(())) }
}

/// A store that runs `StoreOperation`s: the `BookStore` methods written once in this module are
/// its default implementations (public only because the stores' public methods are; only the two
/// stores of this package conform).
public protocol SQLStatementStore: BookStore {
    /// Runs `operation` in the store's transaction of its kind.
    func perform<Answer: Sendable>(_ operation: StoreOperation<Answer>) async throws -> Answer

    /// The store's random source in `0..<1` (poll jitter): injected, so a seed governs it.
    var random: @Sendable () -> Double { get }

    /// True for a single node's database (SQLite): every claim in it is this process's, so
    /// `recoverLeases` takes them all back; false where replicas share it.
    var ownsWholeDatabase: Bool { get }
}
