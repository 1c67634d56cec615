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

        /// "from --input--> to" without its "to".
        static func fromAndInput(_ transition: String) -> String {
            transition.components(separatedBy: "--> ").first ?? transition
        }
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
        // `jobs` seeds side by side (each run is deterministic on its own); outcomes are taken in
        // seed order, so the report does not depend on which finished first.
        var chunks: [[UInt64]] = []
        let width = max(jobs, 1)
        for start in stride(from: 0, to: seeds.count, by: width) { chunks.append(Array(seeds[start..<min(start + width, seeds.count)])) }
        search: for chunk in chunks {
            if let timeLimit, (ContinuousClock.now - started).inSeconds > timeLimit { break }
            let outcomes = try await withThrowingTaskGroup(of: ChaosOutcome.self) { group in
                for seed in chunk {
                    group.addTask {
                        let run = try await ChaosRun.open(world: ChaosWorld(seed: seed, replicas: replicas), database: database)
                        return try await run.run(steps: steps, traceLines: traceLines)
                    }
                }
                return try await group.reduce(into: [UInt64: ChaosOutcome]()) { $0[$1.seed] = $1 }
            }
            for seed in chunk {
                guard let outcome = outcomes[seed] else { continue }
                each(outcome)
                report.searched += 1
                report.steps += outcome.steps
                report.drainSteps += outcome.drainSteps
                report.virtualSeconds += outcome.virtualSeconds
                report.counts.merge(outcome.counts, uniquingKeysWith: +)
                for key in outcome.counts.keys where key.hasPrefix("scenario") && report.firstSeeds[key] == nil { report.firstSeeds[key] = seed }
                report.transitions.merge(outcome.transitions, uniquingKeysWith: +)
                if outcome.violation != nil {
                    report.failed += 1
                    report.failures.append(seed)
                    if stopOnFailure { break search }
                }
            }
        }
        report.seconds = (ContinuousClock.now - started).inSeconds
        return report
    }
}
