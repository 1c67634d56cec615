import BookWatchClocks
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import ServiceLifecycle

/// Runs the watcher's three loops (inbox, polls, analytics) until graceful shutdown; each loop
/// finishes the item in hand and stops taking new ones.
public struct WatcherService: Service {
    /// The watcher it runs.
    public let watcher: Watcher
    let clock: any WallClock
    let tick: TimeInterval
    let hook: CompletionHook?

    /// The watcher's loops as one service, waking every `tick` of `clock`.
    public init(watcher: Watcher, clock: any WallClock, tick: TimeInterval = 1, hook: CompletionHook? = nil) {
        self.watcher = watcher
        self.clock = clock
        self.tick = tick
        self.hook = hook
    }

    /// Runs the loops until graceful shutdown.
    public func run() async throws {
        try await watcher.resume()
        do {
            try await runLoops()
        } catch is CancellationError {
            // Graceful shutdown cancels the loops mid-sleep: that is a clean finish.
        }
    }

    private func runLoops() async throws {
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await loop { try await watcher.processInbox() } }
                group.addTask { try await loop { try await watcher.pollDue() } }
                group.addTask { try await loop { try await watcher.runAnalytics() } }
                group.addTask { try await loop { try await watcher.pruneIfDue() } }
                if let hook {
                    let clock = clock
                    group.addTask { try await loop { try await hook.runPending(now: { clock.now() }) } }
                }
                try await group.waitForAll()
            }
        }
    }

    private func loop(_ step: @escaping @Sendable () async throws -> Int) async throws {
        while !Task.isCancelled {
            do {
                let worked = try await step()
                if worked > 0 { continue }
            } catch is CancellationError where Task.isCancelled {
                return
            } catch {
                watcher.logger.error("watcher step failed; retrying", metadata: ["error": "\(error)"])
            }
            try await clock.sleep(for: tick)
        }
    }
}
