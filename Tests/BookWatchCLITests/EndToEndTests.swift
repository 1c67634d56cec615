import BookWatchClocks
import BookWatchCore
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import OcrolusSimulator
import Synchronization
import Testing

@testable import BookWatchBench
@testable import BookWatchCLI

/// The whole watcher against the in-process simulator on a manual clock: hours of processing in
/// seconds. Each preset checks exactly-once from the simulator's own counters.
@Suite struct EndToEndTests {
    struct Outcome {
        var stats: SimulationStats
        var results: Int
        var states: [BookUUID: BookPhase]
        var polls: Int
        /// Generations whose Book reopened before their analytics could be fetched.
        var superseded: Int
        /// The deployment's `/metrics` samples at the end.
        var metrics: [String: Double]
        var completeJobs: Int
        /// Transactions the deployment's group-commit writer wrote.
        var inboxBatches: Int
        /// The deployment's webhook loss estimate at the end.
        var loss: WebhookLossEstimate
    }

    /// - Parameter trackAll: the lender tracks every Book it creates (`bookwatch track`); otherwise
    ///   Books are known only from webhooks (auto-track).
    func run(
        _ configure: (inout SimulationConfig) -> Void,
        endpoints: [AnalyticsEndpoint] = [.summary],
        trackAll: Bool = false,
        trustWebhooks: Bool = true
    ) async throws -> Outcome {
        var config = SimulationConfig()
        config.books = 25
        config.seed = 11
        config.processingTime = 60...900
        config.reopenAfter = 600...1800
        configure(&config)
        let clock = ManualClock(start: config.start)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var logger = Logger(label: "e2e")
        logger.logLevel = .critical
        var watcherConfig = WatcherConfiguration()
        watcherConfig.analytics = endpoints
        watcherConfig.webhookSilence = 1800
        watcherConfig.trustWebhooks = trustWebhooks
        let deployment = try SimulatedDeployment(
            simulation: config,
            clock: clock,
            databasePath: directory.appendingPathComponent("e2e.sqlite").path,
            watcher: watcherConfig,
            pollSchedule: PollSchedule(minimum: 60, maximum: 900),
            logger: logger
        )
        if trackAll {
            for book in deployment.simulation.scenario.books {
                _ = try await deployment.store.apply(.command(.track(.operator)), to: book.uuid, at: clock.now(), options: .init())
            }
        }
        try await deployment.run(on: clock, until: deployment.simulation.settledAt.addingTimeInterval(6 * 3600))
        let records = try await deployment.store.books(state: nil, limit: nil)
        let stats = await deployment.simulation.stats()
        return Outcome(
            stats: stats,
            results: try await deployment.store.analyticsCounts().results,
            states: Dictionary(uniqueKeysWithValues: records.map { ($0.uuid, $0.machine.phase) }),
            polls: stats.statusCalls,
            superseded: try await deployment.store.analyticsCounts().jobs["superseded"] ?? 0,
            metrics: PrometheusSamples.parse(String(decoding: deployment.metrics.exposition(), as: UTF8.self)),
            completeJobs: try await deployment.store.analyticsCounts().jobs["complete"] ?? 0,
            inboxBatches: deployment.writer.batches.load(ordering: .relaxed),
            loss: deployment.watcher.webhookLoss
        )
    }

    /// Exactly one analytics 200 per finished (Book, generation, endpoint), one stored result each,
    /// deleted Books ended `failed` or `deleted`, every other Book complete.
    /// The metrics agree with the simulator's own counters.
    func checkMetrics(_ outcome: Outcome, _ label: String) {
        let stats = outcome.stats
        let samples = outcome.metrics
        func sum(_ name: String, _ matching: String...) -> Int { Int(PrometheusSamples.sum(samples, name, matching: matching)) }
        #expect(sum("bookwatch_ocrolus_requests_total", #"endpoint="analytics_"#, #"code="200""#) == stats.analyticsOK, "\(label)")
        #expect(sum("bookwatch_ocrolus_requests_total", #"code="429""#) == stats.answers429, "\(label)")
        #expect(sum("bookwatch_analytics_not_ready_total") == stats.analyticsNotReady, "\(label)")
        #expect(sum("bookwatch_polls_total") == stats.statusCalls, "\(label)")
        #expect(
            sum("bookwatch_webhooks_received_total", #"outcome="accepted""#) + sum("bookwatch_webhooks_received_total", #"outcome="duplicate""#)
                == stats.deliveryAnswers["200", default: 0],
            "\(label)"
        )
        #expect(sum("bookwatch_analytics_retrievals_total", #"outcome="stored""#) == outcome.completeJobs, "\(label)")
        #expect(sum("bookwatch_completion_seconds_count") == outcome.completeJobs, "\(label)")
        // Every delivery went through the group commit: at most one transaction per delivery answered.
        let answered = stats.deliveryAnswers["200", default: 0]
        #expect(
            answered == 0 ? outcome.inboxBatches == 0 : (1...answered).contains(outcome.inboxBatches),
            "\(label): \(outcome.inboxBatches) batches"
        )
    }

    func checkExactlyOnce(_ outcome: Outcome, endpoints: Int = 1, _ label: String) {
        let stats = outcome.stats
        #expect(stats.duplicateRetrievals.isEmpty, "\(label): retrieved twice: \(stats.duplicateRetrievals)")
        // A Book deleted before its analytics could be fetched ends failed or deleted instead.
        let kept = stats.truth.filter { $0.deletedAt == nil }
        let expected = kept.reduce(0) { $0 + $1.finishedGenerations } * endpoints
        let keptKeys = stats.analyticsOKByKey.keys.filter { key in kept.contains { key.hasPrefix($0.uuid) } }
        // Every Book's last generation is retrieved; an earlier one whose Book reopened before its
        // analytics could be fetched is superseded (it cannot be fetched any more).
        for truth in kept where truth.finishedGenerations > 0 {
            let lastKeys = stats.analyticsOKByKey.keys.filter { $0.hasPrefix("\(truth.uuid):\(truth.finishedGenerations):") }
            #expect(
                lastKeys.count == endpoints,
                "\(label): \(truth.uuid) generation \(truth.finishedGenerations) not retrieved (\(BookUUID(truth.uuid).flatMap { outcome.states[$0] }.map { "\($0)" } ?? "untracked"))"
            )
        }
        #expect(keptKeys.count <= expected)
        #expect(
            keptKeys.count + outcome.superseded * endpoints >= expected,
            "\(label): \(keptKeys.count) keys retrieved, \(expected) finished, \(outcome.superseded) superseded"
        )
        let deletedBound = stats.truth.filter { $0.deletedAt != nil }.reduce(0) { $0 + $1.finishedGenerations } * endpoints
        #expect(stats.analyticsOKByKey.count - keptKeys.count <= deletedBound)
        #expect(outcome.results == stats.analyticsOKByKey.count, "\(label): results stored")
        for truth in stats.truth {
            guard let uuid = BookUUID(truth.uuid), let state = outcome.states[uuid] else {
                Issue.record("\(label): \(truth.uuid) not tracked")
                continue
            }
            if truth.deletedAt != nil {
                #expect(state == .deleted || state == .failed || state == .complete, "\(label): deleted \(truth.uuid) is \(state)")
            } else {
                #expect(state == .complete, "\(label): \(truth.uuid) is \(state)")
            }
        }
        checkMetrics(outcome, label)
        print(
            "e2e \(label): \(stats.analyticsOKByKey.count) (Book, generation, endpoint) retrieved once each, \(outcome.superseded) superseded, \(stats.statusCalls) status calls for \(stats.books) Books, "
                + "\(stats.webhooksDroppedByFault) webhooks lost, \(stats.answers5xx) 5xx, \(stats.answers429) 429"
        )
    }

    @Test func clean() async throws {
        checkExactlyOnce(
            try await run {
                $0.reopenFraction = 0
                $0.deleteFraction = 0
            },
            "clean"
        )
    }

    @Test func faults() async throws {
        let outcome = try await run(
            {
                $0.faults.webhookDrop = 0.3
                $0.faults.webhookDuplicate = 0.2
                $0.faults.webhookDelay = 0.3
                $0.faults.api5xx = 0.1
                $0.faults.api429 = 0.05
                $0.flavour = .mixed
            },
            trackAll: true
        )
        checkExactlyOnce(outcome, "faults")
        #expect(outcome.stats.answers5xx > 0 && outcome.stats.answers429 > 0)
    }

    /// The adversary's world: gateway 404s (never a deletion), answers leaving up to 8 s after
    /// their view was taken (an answer in flight across webhooks), 5xx, lossy and late webhooks.
    /// Every generation is still retrieved once, and no live Book ends deleted.
    @Test func bareNotFoundsAndLateAnswers() async throws {
        let outcome = try await run(
            {
                $0.faults.bareNotFound = 0.05
                $0.faults.answerDelay = 8
                $0.faults.api5xx = 0.1
                $0.faults.webhookDrop = 0.3
                $0.faults.webhookDuplicate = 0.2
                $0.faults.webhookDelay = 0.3
                $0.faults.maxWebhookDelay = 120
            },
            trackAll: true
        )
        checkExactlyOnce(outcome, "adversary")
        #expect(outcome.stats.answersBare404 > 0)
        let live = outcome.stats.truth.filter { $0.deletedAt == nil }.compactMap { BookUUID($0.uuid) }
        #expect(live.allSatisfy { outcome.states[$0] != .deleted }, "a gateway 404 deleted a live Book")
    }

    @Test func noWebhooksAtAll() async throws {
        checkExactlyOnce(try await run({ $0.webhooksEnabled = false }, trackAll: true), "no webhooks")
    }

    /// An organisation that subscribes only book events: the estimate measures Book finishes (no
    /// document event ever arrives, so none counts as lost) and reads reliable, or lossy when the
    /// book events are lost too.
    @Test func bookEventsOnlyAreMeasuredByBookFinishes() async throws {
        let bookEvents: Set<String> = ["book.verified", "book.completed", "book.analytics_v2.generated"]
        let clean = try await run({ $0.subscribedEvents = bookEvents }, trackAll: true)
        checkExactlyOnce(clean, "book events only")
        let end = try #require(clean.loss.lastReceived[.bookFinishes])
        #expect(clean.loss.lastReceived[.documents] == nil)
        #expect(!clean.loss.receives(.documents, at: end))
        #expect(clean.loss.measuredKind(at: end) == .bookFinishes)
        #expect(!clean.loss.isLossy, "\(clean.loss)")
        #expect((clean.loss.lossRatio ?? 1) < 0.1, "\(clean.loss)")

        let lossy = try await run(
            {
                $0.subscribedEvents = bookEvents
                $0.faults.webhookDrop = 0.6
            },
            trackAll: true
        )
        checkExactlyOnce(lossy, "book events only, 60% lost")
        #expect(lossy.loss.isLossy, "\(lossy.loss)")
    }

    @Test func legacyAccountLevelPayloadsOnly() async throws {
        checkExactlyOnce(try await run { $0.flavour = .account }, "account-level")
    }

    @Test func reopenedBooksAreRetrievedOncePerGeneration() async throws {
        let outcome = try await run {
            $0.reopenFraction = 1
            $0.deleteFraction = 0
        }
        checkExactlyOnce(outcome, "reopen")
        #expect(outcome.stats.truth.allSatisfy { $0.finishedGenerations == 2 })
    }

    /// Webhooks all arrive (twice, some of them) while Books reopen: once the estimate trusts them,
    /// finished bodies finish most Books without a status call, and every finished generation is
    /// still retrieved once. The same run never trusting them confirms every finish.
    @Test func trustedBodiesWithReopensAndDuplicates() async throws {
        func configure(_ config: inout SimulationConfig) {
            config.books = 40
            config.reopenFraction = 0.5
            config.deleteFraction = 0
            config.faults.webhookDuplicate = 0.2
        }
        let trusted = try await run(configure)
        checkExactlyOnce(trusted, "trusted")
        let strict = try await run(configure, trustWebhooks: false)
        checkExactlyOnce(strict, "strict")
        func confirmations(_ outcome: Outcome) -> Int {
            Int(PrometheusSamples.sum(outcome.metrics, "bookwatch_polls_total", matching: [#"reason="webhook_hint""#]))
        }
        let finished = trusted.stats.truth.reduce(0) { $0 + $1.finishedGenerations }
        #expect(confirmations(strict) >= finished)
        // Trusted, the polls left are a reopen's (a new document is confirmed by a status call) and
        // those before the estimate had enough evidence.
        #expect(confirmations(trusted) * 2 < confirmations(strict), "\(confirmations(trusted)) vs \(confirmations(strict)) confirmations")
        #expect(trusted.polls < strict.polls)
    }

    /// Events held back up to two minutes, so bodies and document events cross a reopen out of
    /// order: trusting webhooks never retrieves a generation twice. (Lateness also reads as loss to
    /// the estimate, so how many calls this takes varies from run to run: no count is asserted.)
    @Test func trustedBodiesArrivingLateAcrossReopens() async throws {
        let outcome = try await run {
            $0.books = 40
            $0.reopenFraction = 0.5
            $0.deleteFraction = 0
            $0.faults.webhookDuplicate = 0.2
            $0.faults.webhookDelay = 0.3
            $0.faults.maxWebhookDelay = 120
        }
        checkExactlyOnce(outcome, "late bodies")
    }

    @Test func deletedBooksEndDeletedOrFailed() async throws {
        let outcome = try await run(
            {
                $0.deleteFraction = 1
                $0.reopenFraction = 0
            },
            trackAll: true
        )
        checkExactlyOnce(outcome, "delete")
        #expect(outcome.states.values.contains(.deleted))
    }

    @Test func severalEndpointsEachOnce() async throws {
        checkExactlyOnce(try await run({ $0.books = 10 }, endpoints: [.summary, .cashFlowFeatures, .signals]), endpoints: 3, "3 endpoints")
    }
}
