import BookWatchCore
import Foundation

/// Runs seeds one after the other and sums up what they covered.
package enum ChaosSearch {
    /// What a search found, summed over its seeds.
    package struct Report {
        /// Seeds run.
        package var searched = 0
        /// Seeds that broke an invariant.
        package var failed = 0
        /// Steps taken in all.
        package var steps = 0
        /// Drain steps taken in all.
        package var drainSteps = 0
        /// Virtual time covered in all.
        package var virtualSeconds = 0
        /// Wall time of the search.
        package var seconds = 0.0
        /// Events and faults, summed.
        package var counts: [String: Int] = [:]
        /// Machine transitions taken, summed.
        package var transitions: [String: Int] = [:]
        /// The failing seeds.
        package var failures: [UInt64] = []
        /// The first seed that reached each scenario marker.
        package var firstSeeds: [String: UInt64] = [:]

        /// The report as printed: figures, coverage, and every transition when `showAll`.
        package func lines(transitions showAll: Bool) -> [String] {
            var lines = [
                String(
                    format: "searched %d seeds in %.1f s (%.2f seeds/s, %.0f steps/s): %d failed%@",
                    searched,
                    seconds,
                    Double(searched) / max(seconds, 0.001),
                    Double(steps + drainSteps) / max(seconds, 0.001),
                    failed,
                    failures.isEmpty ? "" : " (seeds \(failures.map(String.init).joined(separator: ", ")))"
                )
            ]
            lines.append("steps: \(steps) searched + \(drainSteps) draining; \(virtualSeconds / 3600) virtual hours")
            lines.append("events and faults:")
            for (key, count) in counts.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(key): \(count)\(firstSeeds[key].map { " (first: seed \($0))" } ?? "")")
            }
            let taken = Set(transitions.keys.map(Self.fromAndInput))
            let possible = ChaosLog.phases.flatMap { from in ChaosLog.inputs.map { "\(from) --\($0)" } }
            let missing = possible.filter { !taken.contains($0) }
            lines.append(
                "machine transitions taken: \(transitions.count) distinct (from, input, to); "
                    + "\(taken.count) of \(possible.count) (from, input) pairs, \(missing.count) never taken"
            )
            if showAll {
                for (key, count) in transitions.sorted(by: { $0.key < $1.key }) { lines.append("  \(key): \(count)") }
                lines.append("(from, input) never taken:")
                for pair in missing { lines.append("  \(pair)") }
            }
            return lines
        }

        /// Counts one seed's outcome in.
        mutating func add(_ outcome: ChaosOutcome) {
            searched += 1
            steps += outcome.steps
            drainSteps += outcome.drainSteps
            virtualSeconds += outcome.virtualSeconds
            counts.merge(outcome.counts, uniquingKeysWith: +)
            for key in outcome.counts.keys where key.hasPrefix("scenario") && firstSeeds[key] == nil { firstSeeds[key] = outcome.seed }
            transitions.merge(outcome.transitions, uniquingKeysWith: +)
            if outcome.violation != nil {
                failed += 1
                failures.append(outcome.seed)
            }
        }

        /// "from --input--> to" without its "to".
        static func fromAndInput(_ transition: String) -> String {
            transition.components(separatedBy: "--> ").first ?? transition
        }
    }

    /// A seed's run ended: where it ran, its place in the search, and its outcome or error.
    private struct Finished: Sendable {
        let place: Int
        let index: Int
        let result: Result<ChaosOutcome, any Error>
    }

    /// Where runs keep their databases unless told: `/dev/shm` when it can be written, else the temporary directory.
    package static func defaultDirectory() -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDirectory), isDirectory.boolValue,
            FileManager.default.isWritableFile(atPath: "/dev/shm")
        {
            return "/dev/shm"
        }
        return FileManager.default.temporaryDirectory.path
    }

    /// Searches the seeds, `jobs` at a time; prints each failure with its replay line.
    package static func run(
        seeds: [UInt64],
        steps: Int,
        replicas: Int,
        traceLines: Int = 60,
        database: ChaosDatabase? = nil,
        timeLimit: TimeInterval? = nil,
        stopOnFailure: Bool = false,
        jobs: Int = 1,
        each: (ChaosOutcome) -> Void = { _ in }
    ) async throws -> Report {
        var report = Report()
        let started = ContinuousClock.now
        let database = database ?? .sqlite(directory: defaultDirectory())
        // `jobs` seeds side by side (each run is deterministic on its own), each on its own thread
        // (`ChaosExecutor`); a place that finishes takes the next seed at once (seeds differ in
        // cost two to one: waiting for a whole batch left a core idle). Outcomes are taken in seed
        // order, so the report does not depend on which finished first.
        let width = max(min(jobs, seeds.count), 1)
        let executors = (0..<width).map { ChaosExecutor(name: "chaos-\($0)") }
        defer { for executor in executors { executor.shutdown() } }
        let template: String? =
            if case .sqlite(let directory) = database, !seeds.isEmpty { try ChaosRun.makeTemplate(directory: directory) } else { nil }
        defer { if let template { ChaosRun.removeFiles(of: template) } }
        // With `stopOnFailure`, the first failure in seed order ends the search: no seed after
        // the earliest failure seen so far starts, and runs after it that were already going are
        // waited for (a run cannot be stopped midway) but neither reported nor allowed to fail the
        // search.
        try await withThrowingTaskGroup(of: Finished.self) { group in
            var next = 0
            var free = Array((0..<width).reversed())  // places without a seed
            var finished: [Int: ChaosOutcome] = [:]
            var reported = 0
            var earliestFailure = Int.max
            var stopped = false
            while true {
                while let place = free.last, !stopped, next < seeds.count, next < earliestFailure,
                    timeLimit.map({ (ContinuousClock.now - started).inSeconds <= $0 }) ?? true
                {
                    free.removeLast()
                    let index = next
                    let seed = seeds[index]
                    let executor = executors[place]
                    next += 1
                    group.addTask(executorPreference: executor) {
                        do {
                            let run = try await ChaosRun.open(
                                world: ChaosWorld(seed: seed, replicas: replicas),
                                database: database,
                                executor: executor,
                                template: template
                            )
                            return Finished(place: place, index: index, result: .success(try await run.run(steps: steps, traceLines: traceLines)))
                        } catch {
                            return Finished(place: place, index: index, result: .failure(error))
                        }
                    }
                }
                guard let done = try await group.next() else { break }
                free.append(done.place)
                if done.index > earliestFailure { continue }  // after the failure that ends the search
                let outcome: ChaosOutcome
                switch done.result {
                case .success(let value): outcome = value
                case .failure(let error):
                    group.cancelAll()
                    throw error
                }
                if outcome.violation != nil, stopOnFailure { earliestFailure = min(earliestFailure, done.index) }
                finished[done.index] = outcome
                while !stopped, let outcome = finished.removeValue(forKey: reported) {
                    reported += 1
                    each(outcome)
                    report.add(outcome)
                    if outcome.violation != nil, stopOnFailure { stopped = true }
                }
            }
        }
        report.seconds = (ContinuousClock.now - started).inSeconds
        return report
    }
}
