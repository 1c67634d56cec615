import Foundation
import Testing

@testable import BookWatchBench

#if canImport(Glibc)
import Glibc
#endif

/// Each seed runs on a thread of its own (`ChaosExecutor`), and a search side by side reports
/// what one after the other does.
@Suite struct ChaosExecutorTests {
    private actor Counter {
        var thread: UInt = 0
        func record() -> UInt {
            thread = currentThread()
            return thread
        }
    }

    @Test func aTaskPreferringItRunsEveryTurnOnOneThread() async throws {
        let executor = ChaosExecutor(name: "test")
        defer { executor.shutdown() }
        let threads = try await Task(executorPreference: executor) { () async throws -> [UInt] in
            var seen = [currentThread()]
            seen.append(await Counter().record())  // a default actor's turn
            seen.append(
                await withTaskGroup(of: UInt.self) { group in  // a child task
                    group.addTask { currentThread() }
                    return await group.next() ?? 0
                }
            )
            try await Task.sleep(for: .milliseconds(2))  // resumed from the timer's thread
            seen.append(currentThread())
            return seen
        }.value
        #expect(threads.count == 4)
        #expect(Set(threads).count == 1, "turns ran on \(Set(threads).count) threads")
        #expect(threads.first != currentThread())
    }

    @Test func workArrivingAfterShutdownStillRuns() async {
        let executor = ChaosExecutor(name: "test")
        executor.shutdown()
        let ran = await Task(executorPreference: executor) { 42 }.value
        #expect(ran == 42)
    }

    @Test func seedsSideBySideReportWhatOneAfterTheOtherDoes() async throws {
        let seeds: [UInt64] = [5, 1, 3, 2]
        var alone: [UInt64] = []
        var together: [UInt64] = []
        let first = try await ChaosSearch.run(seeds: seeds, steps: 100, replicas: 2, jobs: 1) { alone.append($0.seed) }
        let second = try await ChaosSearch.run(seeds: seeds, steps: 100, replicas: 2, jobs: 3) { together.append($0.seed) }
        #expect(alone == seeds && together == seeds)
        #expect(first.counts == second.counts && first.transitions == second.transitions)
        #expect(first.virtualSeconds == second.virtualSeconds && first.drainSteps == second.drainSteps)
    }
}

private func currentThread() -> UInt { UInt(pthread_self()) }
