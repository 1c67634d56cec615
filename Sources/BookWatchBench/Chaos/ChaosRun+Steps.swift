import BookWatchCore
import BookWatchService
import BookWatchStore
import Foundation
import Logging
import OcrolusAPI
import OcrolusSimulator
import Synchronization

/// The scheduler: what may happen next, and doing it.
extension ChaosRun {
    // MARK: steps

    enum Action {
        case chain(Int, ChainKind)
        case arrive(UInt64)
        case answer(UInt64)
        case timeOut(UInt64)
        case deliver(Int, to: Int, loseAnswer: Bool)
        case advanceSmall, advanceToNext, advanceBig
        case operatorAction
        case changeFaults
        case armCrash(Int)
        case kill(Int)
        case restart(Int)
        case pause(Int)
        case unpause(Int)
        case stepClock(Int)
    }

    func takeStep(drain: Bool) async throws {
        var choices: [(Double, Action)] = []
        for replica in replicas where replica.up {
            let running = kernel.chainKinds(replica: replica.index)
            for kind in [ChainKind.inbox, .polls, .analytics, .housekeeping]
            where !running.contains(kind) && !running.contains(.resume) && !idle.contains(ChainKey(replica: replica.index, kind: kind)) {
                choices.append((kind == .housekeeping ? 0.3 : 2, .chain(replica.index, kind)))
            }
        }
        let paused = Set(replicas.filter(\.paused).map(\.index))
        for call in kernel.calls where !paused.contains(call.replica) {
            if call.arrived == nil { choices.append((1.5, .arrive(call.id))) }
            choices.append((3, .answer(call.id)))
            if !drain { choices.append((0.1, .timeOut(call.id))) }
        }
        for (index, _) in inFlight.enumerated().prefix(8) {
            let target = Int(rng.next() % UInt64(replicas.count))
            choices.append((2, .deliver(index, to: target, loseAnswer: !drain && rng.chance(0.05))))
        }
        choices.append((drain ? 0.5 : 1, .advanceSmall))
        choices.append((drain ? 2 : 0.5, .advanceToNext))
        if !drain {
            choices.append((0.05, .advanceBig))
            choices.append((0.15, .operatorAction))
            choices.append((0.08, .changeFaults))
            for replica in replicas {
                if replica.gate.isDead {
                    choices.append((0.4, .restart(replica.index)))
                    continue
                }
                choices.append((0.04, .armCrash(replica.index)))
                choices.append((0.01, .kill(replica.index)))
                choices.append((0.01, .restart(replica.index)))
                choices.append(replica.paused ? (0.2, .unpause(replica.index)) : (0.01, .pause(replica.index)))
                choices.append((0.01, .stepClock(replica.index)))
            }
        }
        let total = choices.reduce(0) { $0 + $1.0 }
        var roll = rng.unit() * total
        var action = choices[choices.count - 1].1
        for (weight, candidate) in choices {
            roll -= weight
            if roll < 0 {
                action = candidate
                break
            }
        }
        try await perform(action)
        try await settle()
        if case .chain(let index, let kind) = action, !kernel.chainKinds(replica: index).contains(kind),
            worked.units.withLock({ $0[ChainKey(replica: index, kind: kind)] }) == 0
        {
            idle.insert(ChainKey(replica: index, kind: kind))
        } else {
            idle.removeAll()
        }
        await afterStep()
    }

    func perform(_ action: Action) async throws {
        switch action {
        case .chain(let index, let kind):
            guard let watcher = replicas[index].watcher else { return }
            log.count("step: \(kind.rawValue)")
            let worked = worked
            kernel.start(replica: index, kind: kind) {
                var units = 1
                switch kind {
                case .inbox: units = (try? await watcher.processInbox(limit: 1)) ?? 1
                case .polls: units = (try? await watcher.pollDue(limit: 1)) ?? 1
                case .analytics: units = (try? await watcher.runAnalytics(limit: 1)) ?? 1
                case .housekeeping:
                    await watcher.refreshSilence()
                    units = (try? await watcher.pruneIfDue()) ?? 1
                case .resume: try? await watcher.resume()
                }
                worked.units.withLock { $0[ChainKey(replica: index, kind: kind)] = units }
            }
        case .arrive(let id):
            guard let call = kernel.calls.first(where: { $0.id == id }) else { return }
            let response = await simulation.handle(call.request)
            kernel.arrive(id, response)
            log.count("call: arrived, answer held")
            log.note(replica: call.replica, Self.book(of: call.request), "\(Self.describe(call.request)) reached Ocrolus: \(response.status)")
        case .answer(let id):
            guard let call = kernel.calls.first(where: { $0.id == id }) else { return }
            let response: IncomingResponse
            if let arrived = call.arrived {
                response = arrived
                log.count("call: late answer")
            } else {
                response = await simulation.handle(call.request)
                log.count("call: answered")
            }
            markAnswer(call, response)
            log.note(
                replica: call.replica,
                Self.book(of: call.request),
                "\(Self.describe(call.request)) answered \(response.status)"
                    + (call.arrived != nil ? " (view from when it arrived)" : "")
            )
            kernel.finish(id, with: .success(response))
        case .timeOut(let id):
            guard let call = kernel.calls.first(where: { $0.id == id }) else { return }
            log.count("fault: call timed out\(call.arrived != nil ? " after reaching Ocrolus" : "")")
            log.note(replica: call.replica, Self.book(of: call.request), "\(Self.describe(call.request)) timed out")
            kernel.finish(id, with: .failure(ChaosNetworkError.timedOut))
        case .deliver(let index, let target, let loseAnswer):
            try await deliver(inFlight.remove(at: index), to: replicas[target], loseAnswer: loseAnswer)
        case .advanceSmall:
            try await advance(to: kernel.now.addingTimeInterval(rng.uniform(0.5...10)))
        case .advanceToNext:
            let next = try await nextDue()
            try await advance(to: max(next ?? kernel.now.addingTimeInterval(60), kernel.now.addingTimeInterval(0.5)))
        case .advanceBig:
            // The whole deployment frozen (a host suspended): nothing runs meanwhile, so no
            // liveness is owed for the jump.
            log.count("time: jump")
            let from = kernel.now
            try await advance(to: kernel.now.addingTimeInterval(rng.pick([300.0, 1800, 3 * 3600])))
            downtime.append((from, kernel.now))
        case .operatorAction:
            try await operatorAction()
        case .changeFaults:
            var faults = ChaosWorld.faults(&rng)
            if rng.chance(0.3) { faults.rateLimit = world.rate * Double(world.replicas) }
            faults.statusRefused = world.refusal
            log.count("fault: profile changed")
            log.note(
                replica: nil,
                nil,
                "faults now: drop \(faults.webhookDrop), 5xx \(faults.api5xx), 429 \(faults.api429), "
                    + "bare 404 \(faults.bareNotFound), early VERIFIED \(faults.earlyVerified)"
            )
            await simulation.setFaults(faults)
        case .armCrash(let index):
            let after = rng.chance(0.5)
            let calls = 1 + Int(rng.next() % 8)
            replicas[index].gate.arm(after: calls, afterCommit: after)
            log.count("fault: crash armed")
        case .kill(let index):
            log.count("fault: killed")
            log.note(replica: index, nil, "killed")
            replicas[index].gate.kill()
        case .restart(let index):
            log.count(replicas[index].gate.isDead ? "replica: restarted after death" : "replica: restarted")
            try await restart(replicas[index])
        case .pause(let index):
            log.count("fault: replica paused")
            log.note(replica: index, nil, "paused")
            replicas[index].paused = true
        case .unpause(let index):
            log.note(replica: index, nil, "resumed")
            replicas[index].paused = false
        case .stepClock(let index):
            let seconds = rng.pick([-600.0, -90, -30, -1, 1, 30, 90, 600])
            kernel.step(replica: index, by: seconds)
            if seconds > 0 { rateChecks[index]?.reset() }
            log.count("fault: clock stepped \(seconds > 0 ? "forward" : "back")")
            log.note(replica: index, nil, "clock stepped \(Int(seconds))s")
        }
    }

    /// Scenario markers an answer shows: a gateway's bare 404, a status answer whose question
    /// left before a webhook about its Book was applied.
    func markAnswer(_ call: ChaosKernel.Call, _ response: IncomingResponse) {
        if response.status == 404, response.header("Content-Type") == "text/html" { log.count("scenario 1: a bare 404 answered") }
        if response.status == 403, let book = Self.book(of: call.request) {
            log.count("scenario 5: a status call refused (403/2102)")
            refused.insert(book)
        }
        if Self.describe(call.request) == "status", let book = Self.book(of: call.request), let sent = callSeenAt[call.id],
            let webhook = log.lastWebhookStep(book), webhook > sent
        {
            log.count("scenario 2: a status answer in flight across a webhook")
        }
    }

    /// Moves time to `date` one wake-up at a time, settling after each, so chains woken at
    /// different moments never run side by side.
    func advance(to date: Date) async throws {
        log.count("time: advanced")
        while let next = kernel.nextWakeUp, next <= date {
            kernel.advance(to: next)
            try await settle()
        }
        kernel.advance(to: date)
    }

    /// The next moment anything is due: a sleeper, a webhook, a poll or a job, a Book's creation.
    func nextDue() async throws -> Date? {
        let creations = simulation.scenario.books.map { world.simulation.start.addingTimeInterval($0.createdAt) }.filter { $0 > kernel.now }
        // A claim compares a stored due time with the claiming replica's clock: a replica whose
        // clock runs ahead sees polls and jobs due that much earlier in global time, as its loops
        // would in `serve`. Waking at the stored time skipped those minutes: with one replica 600 s ahead
        // every poll came ten minutes late (seed 18046, a generation never seen).
        let ahead = replicas.filter(\.up).map { max(0, kernel.offset(replica: $0.index)) }.max() ?? 0
        let stored = [try await store.nextPollAt(), try await store.nextJobDueAt()].map { $0?.addingTimeInterval(-ahead) }
        let candidates: [Date?] = [kernel.nextWakeUp, await simulation.nextWebhookDueAt(), creations.min()] + stored
        return candidates.compactMap { $0 }.min().map { min($0, kernel.now.addingTimeInterval(6 * 3600)) }
    }

    func deliver(_ delivery: WebhookDelivery, to replica: Replica, loseAnswer: Bool) async throws {
        // Signed as it leaves (a delivery held in flight is not one signed long ago).
        var delivery = delivery
        if let secret = world.simulation.webhookSecret, let requestID = delivery.headers.first(where: { $0.0 == "Webhook-Request-Id" })?.1 {
            let timestamp = String(Int(kernel.now.timeIntervalSince1970))
            delivery.headers.removeAll { $0.0 == "Webhook-Timestamp" || $0.0 == "Webhook-Signature" }
            delivery.headers += [
                ("Webhook-Timestamp", timestamp),
                ("Webhook-Signature", WebhookVerifier.sign(body: delivery.body, timestamp: timestamp, requestID: requestID, secret: secret)),
            ]
        }
        let book = delivery.bookIndex >= 0 ? simulation.scenario.books[delivery.bookIndex].uuid : nil
        var status: Int?
        if replica.up, let store = replica.store {
            let (code, _) = await SimulatedDeployment.receive(
                delivery,
                verifier: verifier,
                store: store,
                health: replica.health,
                now: kernel.now(replica: replica.index)
            )
            status = replica.gate.isDead ? nil : code
            if status == 200, let requestID = delivery.headers.first(where: { $0.0 == "Webhook-Request-Id" })?.1 {
                if try await !self.store.inboxContains(requestID: requestID) {
                    pendingViolation = ChaosViolation(
                        invariant: "every delivery answered 200 is in the inbox",
                        detail: "request \(requestID) is not",
                        book: book
                    )
                }
            }
        }
        log.count("webhook: \(status.map { "answered \($0)" } ?? "no answer")")
        if loseAnswer, status != nil {
            log.count("fault: webhook answer lost")
            status = nil
        }
        log.note(
            replica: replica.index,
            book,
            "webhook \(delivery.eventName.isEmpty ? "(thin body)" : delivery.eventName) "
                + "attempt \(delivery.attempt) -> \(status.map(String.init) ?? "no answer")"
        )
        await simulation.recordAnswer(delivery, status: status)
    }

    func operatorAction() async throws {
        let books = simulation.scenario.books
        let book = books[Int(rng.next() % UInt64(books.count))]
        let uuid = book.uuid
        let now = kernel.now
        let input: BookInput
        switch rng.next() % 5 {
        case 0, 1: input = .command(.track(.operator))
        case 2: input = .command(.track(.created))
        case 3: input = .command(.untrack)
        default: input = .command(.retry)
        }
        log.count("operator: \(ChaosLog.label(input))")
        log.touchedStore()
        let outcome = try await store.apply(input, to: uuid, at: now, options: TransitionOptions())
        log.note(replica: nil, uuid, "operator \(ChaosLog.label(input)) -> \(outcome?.machine.phase.rawValue ?? "nothing")")
        switch input {
        case .command(.untrack):
            if outcome != nil, operatorUntracked.insert(uuid).inserted { untrackedSince[uuid] = now }
        case .command(.track): retracked(uuid, at: now)
        default: break
        }
    }

    /// The operator tracked a Book: if it had been untracked, the time it was untracked is not
    /// time served (found as a false positive of the harness, seed 926: a generation of the
    /// untracked hours counted as owed); the time tracked before the untrack still is.
    func retracked(_ uuid: BookUUID, at now: Date) {
        guard operatorUntracked.remove(uuid) != nil, let since = untrackedSince.removeValue(forKey: uuid) else { return }
        untrackedSpans[uuid, default: []].append((since, now))
    }

    /// After every step: new deliveries, the operator's `track --new` at creation, downtime.
    func afterStep() async {
        inFlight += await simulation.takeDueDeliveries()
        let books = simulation.scenario.books
        let now = kernel.now
        while creationsSeen < books.count {
            let created = books.sorted { $0.createdAt < $1.createdAt }[creationsSeen]
            guard world.simulation.start.addingTimeInterval(created.createdAt) <= now else { break }
            creationsSeen += 1
            if rng.chance(world.trackAtCreation) {
                log.count("operator: track --new at creation")
                log.touchedStore()
                let outcome = try? await store.apply(.command(.track(.created)), to: created.uuid, at: now, options: TransitionOptions())
                log.note(replica: nil, created.uuid, "operator track --new -> \(outcome?.machine.phase.rawValue ?? "nothing")")
                retracked(created.uuid, at: now)
            }
        }
        let down = replicas.allSatisfy { !$0.up }
        if down, downSince == nil { downSince = now }
        if !down, let since = downSince {
            downtime.append((since, now))
            downSince = nil
        }
    }
}
