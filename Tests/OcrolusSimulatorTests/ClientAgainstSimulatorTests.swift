import BookWatchClocks
import BookWatchCore
import Foundation
import OcrolusAPI
import OcrolusSimulator
import Testing

@Suite struct ClientAgainstSimulatorTests {
    @Test func statusByUUIDAndByPkAgree() async throws {
        let sim = SimulatorHarness()
        let book = try #require(sim.books.first)
        sim.at(book.createdAt + 90)
        let byUUID = try await sim.client.bookStatus(uuid: book.uuid, priority: .background)
        let byPK = try await sim.client.bookStatus(pk: book.pk, priority: .background)
        #expect(byUUID == byPK)
        #expect(byPK.uuid == book.uuid)
        #expect(byPK.pk == book.pk)
        guard case .present(_, let status, let documents) = byUUID.snapshot else {
            Issue.record("no snapshot")
            return
        }
        #expect(status == .verifying)
        #expect(documents.count == book.documentStatuses(at: book.createdAt + 90).count)
        #expect(await sim.simulation.stats().statusCallsByBook[book.uuid.rawValue] == 2)
    }

    @Test func statusesAdvanceOverTime() async throws {
        let sim = SimulatorHarness {
            $0.reopenFraction = 0
            $0.deleteFraction = 0
        }
        let book = try #require(sim.books.first)
        sim.at(book.createdAt + 61)
        #expect(!(try await sim.client.bookStatus(uuid: book.uuid, priority: .background)).snapshot.isFinished)
        sim.at(try #require(book.generations.first).verifiedAt)
        #expect(try await sim.client.bookStatus(uuid: book.uuid, priority: .background).snapshot.isFinished)
    }

    @Test func tokenIsRefreshedMidRunAtHalfItsLifetime() async throws {
        let sim = SimulatorHarness { $0.tokenLifetime = 600 }
        let book = try #require(sim.books.first)
        sim.at(book.createdAt + 60)
        _ = try await sim.client.bookStatus(uuid: book.uuid, priority: .background)
        sim.at(book.createdAt + 60 + 299)
        _ = try await sim.client.bookStatus(uuid: book.uuid, priority: .background)
        #expect(await sim.simulation.stats().tokensIssued == 1)
        sim.at(book.createdAt + 60 + 301)
        _ = try await sim.client.bookStatus(uuid: book.uuid, priority: .background)
        #expect(await sim.simulation.stats().tokensIssued == 2)
    }

    @Test func a401RefreshesTheTokenOnceAndRetries() async throws {
        let sim = SimulatorHarness()
        let book = try #require(sim.books.first)
        sim.at(book.createdAt + 60)
        _ = try await sim.client.bookStatus(uuid: book.uuid, priority: .background)
        await sim.simulation.revokeTokens()
        _ = try await sim.client.bookStatus(uuid: book.uuid, priority: .background)
        let stats = await sim.simulation.stats()
        #expect(stats.answers401 == 1)
        #expect(stats.tokensIssued == 2)
        #expect(stats.statusCalls == 2)
    }

    @Test func wrongCredentialsAreUnauthorized() async throws {
        let sim = SimulatorHarness {
            $0.clientID = "someone-else"
            $0.clientSecret = "x"
        }
        let book = try #require(sim.books.first)
        let error = await #expect(throws: OcrolusError.self) { try await sim.client.bookStatus(uuid: book.uuid, priority: .urgent) }
        #expect(error?.kind == .unauthorized)
        #expect(error?.endpoint == "token")
    }

    @Test func a429WithAndWithoutRetryAfter() async throws {
        for fraction in [0.0, 1.0] {
            let sim = SimulatorHarness()
            let book = try #require(sim.books.first)
            sim.at(book.createdAt + 60)
            _ = try await sim.client.bookStatus(uuid: book.uuid, priority: .background)  // token first
            var faults = FaultConfig()
            faults.api429 = 1
            faults.retryAfterFraction = fraction
            await sim.simulation.setFaults(faults)
            let error = await #expect(throws: OcrolusError.self) { try await sim.client.bookStatus(uuid: book.uuid, priority: .background) }
            #expect(error?.kind == .transient)
            #expect(error?.isRateLimited == true)
            if fraction == 0 {
                #expect(error?.retryAfter == nil)
            } else {
                let retryAfter = try #require(error?.retryAfter)
                #expect((1...5).contains(retryAfter))
            }
            // The limiter is paused for the Retry-After (or one interval) and then slowed down.
            #expect(await sim.simulation.stats().answers429 == 1)
        }
    }

    @Test func a5xxBurstIsRetriedUntilItPasses() async throws {
        let sim = SimulatorHarness()
        let book = try #require(sim.books.first)
        sim.at(book.createdAt + 60)
        _ = try await sim.client.bookStatus(uuid: book.uuid, priority: .background)
        var faults = FaultConfig()
        faults.api5xx = 1
        await sim.simulation.setFaults(faults)
        // Every attempt fails while the burst lasts: the retries give up with a transient error.
        let policy = RetryPolicy(base: 1, cap: 4, maxAttempts: 3)
        let failing = Task {
            try await withRetries(policy: policy, clock: sim.clock, random: { 1 }) {
                try await sim.client.bookStatus(uuid: book.uuid, priority: .background)
            }
        }
        for _ in 0..<50 {
            await Task.yield()
            sim.clock.advance(by: 1)
        }
        let error = await #expect(throws: OcrolusError.self) { try await failing.value }
        #expect(error?.kind == .transient)
        #expect([500, 502, 503, 504].contains(error?.httpStatus ?? 0))
        #expect(await sim.simulation.stats().answers5xx == 3)
        // The burst ends after the first retry: the call succeeds.
        let passing = Task {
            try await withRetries(policy: policy, clock: sim.clock, random: { 1 }) {
                try await sim.client.bookStatus(uuid: book.uuid, priority: .background)
            }
        }
        while await sim.simulation.stats().answers5xx < 4 { await Task.yield() }
        await sim.simulation.setFaults(FaultConfig())
        for _ in 0..<50 {
            await Task.yield()
            sim.clock.advance(by: 1)
        }
        #expect(try await passing.value.uuid == book.uuid)
    }

    @Test func analyticsAre425UntilReadyThen200() async throws {
        let sim = SimulatorHarness { $0.deleteFraction = 0 }
        let book = try #require(sim.books.first)
        let generation = try #require(book.generations.first)
        sim.at(generation.verifiedAt + 1)
        #expect(try await sim.client.analytics(uuid: book.uuid, endpoint: .summary, priority: .urgent) == .notReady(retryAfter: nil))
        sim.at(generation.analyticsReadyAt)
        guard case .ready(let body) = try await sim.client.analytics(uuid: book.uuid, endpoint: .summary, priority: .urgent) else {
            Issue.record("not ready")
            return
        }
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect((json["response"] as? [String: Any])?["generation"] as? Int == 1)
        let stats = await sim.simulation.stats()
        #expect(stats.analyticsNotReady == 1)
        #expect(stats.analyticsOKByKey == ["\(book.uuid):1:summary": 1])
    }

    @Test func enrichedTransactionsComeInPagesWithoutATotal() async throws {
        let sim = SimulatorHarness {
            $0.deleteFraction = 0
            $0.reopenFraction = 0
            $0.failFraction = 0
            $0.documentsPerBook = 4...6
            $0.transactionsPerDocument = 700
        }
        let book = try #require(sim.books.first)
        let ready = try #require(book.generations.first).analyticsReadyAt
        sim.at(ready)
        let total = book.documentStatuses(at: ready).count * 700
        var offset = 0
        var seen = 0
        var asked: [Int] = []
        while true {
            asked.append(offset)
            let page = AnalyticsPageRequest(offset: offset, limit: 1000)
            guard
                case .ready(let body) = try await sim.client.analytics(
                    uuid: book.uuid,
                    endpoint: .enrichedTransactions,
                    page: page,
                    priority: .urgent,
                    beforeSend: {}
                )
            else {
                Issue.record("not ready")
                return
            }
            let response = try #require((try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["response"] as? [String: Any])
            #expect(response["total"] == nil)
            seen += (response["enriched_transactions"] as? [Any])?.count ?? -1
            guard case .next(let next) = AnalyticsPaging.end(of: body, offset: offset) else { break }
            offset = next
        }
        #expect(seen == total)
        let stats = await sim.simulation.stats()
        let generation = book.generations.count
        #expect(
            stats.analyticsOKByKey.keys.sorted()
                == asked.map { "\(book.uuid):\(generation):enriched_txns@\($0)" }.sorted()
        )
        #expect(asked.last == total)  // the empty page after the last items ends them
    }

    @Test func everyAnalyticsEndpointIsServed() async throws {
        let sim = SimulatorHarness { $0.deleteFraction = 0 }
        let book = try #require(sim.books.first)
        sim.at(try #require(book.generations.first).analyticsReadyAt)
        for endpoint in AnalyticsEndpoint.allCases {
            let answer = try await sim.client.analytics(uuid: book.uuid, endpoint: endpoint, priority: .urgent)
            guard case .ready = answer else {
                Issue.record("\(endpoint) not ready")
                continue
            }
        }
        #expect(await sim.simulation.stats().analyticsOK == AnalyticsEndpoint.allCases.count)
    }

    @Test func deletedBooksAreGoneInEveryVariant() async throws {
        let sim = SimulatorHarness {
            $0.books = 60
            $0.deleteFraction = 1
        }
        var answers = Set<String>()
        for book in sim.books.prefix(12) {
            sim.at(try #require(book.deletedAt) + 1)
            let result = try await sim.client.bookStatus(uuid: book.uuid, priority: .background)
            #expect(result.snapshot == .gone)
            answers.insert(book.deletedAnswersWithStatus ? "status" : "error-\(book.index % 3)")
            let error = await #expect(throws: OcrolusError.self) {
                try await sim.client.analytics(uuid: book.uuid, endpoint: .summary, priority: .urgent)
            }
            // Not final from one analytics answer: the status endpoint decides, twice.
            #expect(error?.kind == .transient)
            #expect(error?.isBookGone == true)
        }
        #expect(answers.count >= 3)
    }

    @Test func unknownBooksAreGone() async throws {
        let sim = SimulatorHarness()
        let unknown = try BookUUID(parsing: "11111111-2222-4333-8444-555555555555")
        #expect(try await sim.client.bookStatus(uuid: unknown, priority: .background).snapshot == .gone)
    }

    @Test func theEnforcedRateLimitAnswers429() async throws {
        let sim = SimulatorHarness {
            $0.faults.rateLimit = 5
            $0.faults.rateBurst = 5
        }
        let book = try #require(sim.books.first)
        sim.at(book.createdAt + 60)
        // The client's own limiter (1000/s here) pauses after each 429, so time must move.
        let calls = Task {
            var limited = 0
            for _ in 0..<10 {
                do { _ = try await sim.client.bookStatus(uuid: book.uuid, priority: .background) } catch let error as OcrolusError {
                    if error.isRateLimited { limited += 1 }
                }
            }
            return limited
        }
        var steps = 0
        while await sim.simulation.stats().statusCalls + sim.simulation.stats().answers429 < 10 && steps < 100_000 {
            steps += 1
            await Task.yield()
            if let next = sim.clock.nextDeadline { sim.clock.advance(to: next) }
        }
        let limited = try await calls.value
        #expect(limited >= 1)
        let stats = await sim.simulation.stats()
        #expect(stats.answers429 == limited)
        #expect(stats.answersRateLimited == limited)
        #expect(stats.statusCalls == 10 - limited)
        #expect(stats.requestsAdmitted == 10 - limited)
    }
}
