import BookWatchStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Group commit for the webhook inbox: deliveries that arrive while a transaction is being written
/// wait and go into the next one together, so `synchronous=FULL` costs one disk flush per batch
/// rather than per request. Each caller gets its own outcome only after its batch has committed.
public final class InboxWriter: Service {
    struct Pending {
        let delivery: InboxDelivery
        let continuation: CheckedContinuation<InboxAppendOutcome, any Error>
    }

    struct State {
        var pending: [Pending] = []
        var wakeUp: CheckedContinuation<Void, Never>?
        var closed = false
        /// Body bytes of `pending`.
        var bytes = 0
    }

    /// The writer stopped taking deliveries (shutting down).
    public struct Closed: Error, CustomStringConvertible {
        /// Says so.
        public var description: String { "the inbox writer is shutting down" }
    }

    /// The queue holds `maxQueued` deliveries waiting for their transaction: the database is not
    /// keeping up, so the delivery is refused (503) instead of growing memory without end.
    public struct Full: Error, CustomStringConvertible {
        /// Says so.
        public var description: String { "the inbox writer's queue is full" }
    }

    private let store: any InboxStore
    private let health: ServiceHealth
    private let logger: Logger
    private let maxBatch: Int
    private let maxQueued: Int
    private let maxQueuedBytes: Int
    private let state = Mutex(State())
    /// Transactions written so far (for tests and benchmarks).
    public let batches = Atomic<Int>(0)

    /// - Parameter maxQueued: deliveries waiting at most; one more is refused with `Full` (a 503,
    ///   which Ocrolus retries) rather than queued without bound while the database is slow.
    ///   `maxQueuedBytes` bounds their bodies the same way (10,000 bodies of 1 MiB would be 10 GiB).
    public init(
        store: any InboxStore,
        health: ServiceHealth,
        logger: Logger,
        maxBatch: Int = 512,
        maxQueued: Int = 10_000,
        maxQueuedBytes: Int = 256 << 20
    ) {
        self.maxQueued = max(1, maxQueued)
        self.maxQueuedBytes = max(1, maxQueuedBytes)
        self.store = store
        self.health = health
        self.logger = logger
        self.maxBatch = maxBatch
    }

    /// Deliveries waiting for their transaction.
    public var queuedCount: Int { state.withLock { $0.pending.count } }

    /// Stores one delivery durably; returns once its transaction has committed.
    public func append(_ delivery: InboxDelivery) async throws -> InboxAppendOutcome {
        try await withCheckedThrowingContinuation { continuation in
            let (refusal, wake) = state.withLock { state -> ((any Error)?, CheckedContinuation<Void, Never>?) in
                guard !state.closed else { return (Closed(), nil) }
                guard state.pending.count < maxQueued, state.pending.isEmpty || state.bytes + delivery.body.count <= maxQueuedBytes else {
                    return (Full(), nil)
                }
                state.pending.append(Pending(delivery: delivery, continuation: continuation))
                state.bytes += delivery.body.count
                defer { state.wakeUp = nil }
                return (nil, state.wakeUp)
            }
            if let refusal { continuation.resume(throwing: refusal) } else { wake?.resume() }
        }
    }

    /// Until graceful shutdown or cancellation (another service failed): either way the queued
    /// deliveries are written first, so no 200 is lost. The loop runs in a task of its own, out
    /// of reach of the cancellation (the store refuses a cancelled task's work, and would roll
    /// back a batch being written when it came): `close()` is how it is stopped.
    public func run() async throws {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await Task { await self.writeLoop() }.value
            } onGracefulShutdown: {
                self.close()
            }
        } onCancel: {
            self.close()
        }
    }

    /// Stops taking deliveries; those already queued are still written.
    public func close() {
        let wake = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.closed = true
            defer { state.wakeUp = nil }
            return state.wakeUp
        }
        wake?.resume()
    }

    private func writeLoop() async {
        while true {
            let (batch, closed) = state.withLock { state -> ([Pending], Bool) in
                let count = min(state.pending.count, maxBatch)
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                state.bytes -= batch.reduce(0) { $0 + $1.delivery.body.count }
                return (batch, state.closed)
            }
            if batch.isEmpty {
                if closed { return }
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        if !state.pending.isEmpty || state.closed { return true }
                        state.wakeUp = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
                continue
            }
            if await !write(batch), closed { return failQueued() }
        }
    }

    /// Closed and the database failing: the rest of the queue is answered 503 at once (Ocrolus
    /// retries it) rather than batch by batch, each waiting out the store's timeout, so shutdown
    /// is not held for minutes by a database that is down.
    private func failQueued() {
        let rest = state.withLock { state -> [Pending] in
            defer {
                state.pending = []
                state.bytes = 0
            }
            return state.pending
        }
        for pending in rest { pending.continuation.resume(throwing: Closed()) }
    }

    /// Writes one batch and answers its callers; false when the write failed.
    private func write(_ batch: [Pending]) async -> Bool {
        do {
            let outcomes = try await store.appendToInbox(batch: batch.map { $0.delivery })
            batches.add(1, ordering: .relaxed)
            if !health.isReady { health.databaseRecovered() }
            for (pending, outcome) in zip(batch, outcomes) { pending.continuation.resume(returning: outcome) }
            return true
        } catch {
            if health.isReady { logger.error("inbox write failed; answering 503", metadata: ["error": "\(error)", "batch": "\(batch.count)"]) }
            health.databaseFailed(error)
            for pending in batch { pending.continuation.resume(throwing: error) }
            return false
        }
    }
}
