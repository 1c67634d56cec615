import BookWatchCore
import Foundation
import Synchronization

/// What a chaos run did: a trace of events (each with the step, the virtual time, the replica
/// and the Book it touched), counts of each kind of event and fault, and the machine transitions
/// (from, input, to) taken.
final class ChaosLog: Sendable {
    struct Event: Sendable {
        var step: Int
        var seconds: Int
        var replica: Int?
        var book: BookUUID?
        var text: String
    }

    private struct State {
        var step = 0
        var events: [Event] = []
        var counts: [String: Int] = [:]
        var transitions: [String: Int] = [:]
        var lastWebhookStep: [BookUUID: Int] = [:]
        var supersessions: [BookUUID: Int] = [:]
        var failedByRefusal: Set<BookUUID> = []
    }

    private let state = Mutex(State())
    private let calls = Atomic<Int>(0)

    /// Store calls made so far (any replica, the operator).
    var storeCalls: Int { calls.load(ordering: .relaxed) }
    func touchedStore() { calls.add(1, ordering: .relaxed) }
    let start: Date
    private let now: @Sendable () -> Date

    init(start: Date, now: @escaping @Sendable () -> Date) {
        self.start = start
        self.now = now
    }

    func setStep(_ step: Int) { state.withLock { $0.step = step } }

    /// Seconds since the run's start, as the trace prints times.
    func stamp(_ date: Date) -> String { "t+\(Int(date.timeIntervalSince(start).rounded()))s" }

    func note(replica: Int?, _ book: BookUUID?, _ text: String) {
        let seconds = Int(now().timeIntervalSince(start).rounded())
        state.withLock { state in
            state.events.append(Event(step: state.step, seconds: seconds, replica: replica, book: book, text: text))
        }
    }

    func count(_ kind: String, _ n: Int = 1) { state.withLock { $0.counts[kind, default: 0] += n } }

    func transition(replica: Int, _ book: BookUUID, from: BookPhase?, input: BookInput, to: BookPhase, actions: [BookAction]) {
        let key = "\(from?.rawValue ?? "new") --\(Self.label(input))--> \(to.rawValue)"
        state.withLock { $0.transitions[key, default: 0] += 1 }
        let acts = actions.map(Self.label).joined(separator: ", ")
        note(replica: replica, book, "\(key)\(acts.isEmpty ? "" : " [\(acts)]")")
    }

    /// Counts the issue-14 scenarios ("Nothing doubled, nothing lost") a transition shows, so the
    /// search can say which seed reached each (docs/testing.md).
    func scenarios(_ book: BookUUID, input: BookInput, actions: [BookAction]) {
        if case .webhook = input { state.withLock { $0.lastWebhookStep[book] = $0.step } }
        if case .pollRefused = input, actions.contains(.schedulePoll(.never)) {
            count("scenario 5: a refusal confirmed by a second one")
            state.withLock { _ = $0.failedByRefusal.insert(book) }
        }
        for action in actions {
            switch action {
            case .confirmAnalyticsJob: count("scenario 0: a confirming answer released the job")
            case .supersedeAnalyticsJob:
                count("scenario 2: a reopen superseded a job")
                state.withLock { $0.supersessions[book, default: 0] += 1 }
            case .expediteAnalyticsJob: count("scenario 4: an analytics-ready event released a waiting job")
            case .warn(let message) where message.contains("asked before the generation finished"):
                count("scenario 2: an answer older than the finish dropped")
            case .warn(let message) where message.contains("gone; a second look"):
                count("scenario 1: one gone answer waits for a second look")
            default: break
            }
        }
        if case .webhook(let hint, _) = input, !hint.authenticated, hint.event == .bookVerified || hint.event == .bookCompleted {
            count("scenario 3: an unauthenticated finished body")
        }
    }

    /// Jobs superseded per Book, as the transitions said (pruning may delete the rows since).
    func supersessions(_ book: BookUUID) -> Int { state.withLock { $0.supersessions[book] ?? 0 } }

    /// Whether a Book was failed by a confirmed refusal of its status calls (not watched again
    /// until the operator's retry).
    func failedByRefusal(_ book: BookUUID) -> Bool { state.withLock { $0.failedByRefusal.contains(book) } }

    /// The step of the last webhook applied to a Book.
    func lastWebhookStep(_ book: BookUUID) -> Int? { state.withLock { $0.lastWebhookStep[book] } }

    var counts: [String: Int] { state.withLock { $0.counts } }
    var transitions: [String: Int] { state.withLock { $0.transitions } }
    var events: [Event] { state.withLock { $0.events } }

    /// The trace lines of one Book (and the run-wide events around it), the last `limit`.
    func trace(of book: BookUUID?, limit: Int = 60) -> [String] {
        let lines = events.filter { $0.book == nil || $0.book == book }.suffix(limit)
        return lines.map { event in
            "  #\(event.step) t+\(event.seconds)s \(event.replica.map { "r\($0)" } ?? "--") \(event.text)"
        }
    }

    /// The phases a transition starts from ("new": the Book was not tracked yet).
    static let phases = ["new"] + BookPhase.allCases.map(\.rawValue)

    /// Every input kind `label` names (the webhook events bookwatch acts on, authenticated or not).
    static let inputs: [String] = {
        let events: [WebhookEvent] = [
            .documentUploaded, .documentClassified, .documentVerified, .bookVerified, .bookCompleted, .bookAnalyticsGenerated, .documentStatus,
        ]
        return ["snapshot(finished)", "snapshot(unfinished)", "snapshot(gone)"]
            + events.flatMap { ["webhook(\($0))", "webhook(\($0),unauthenticated)"] }
            + ["analytics(stored)", "analytics(notReady)", "analytics(transient)", "analytics(permanent)"]
            + ["track(operator)", "track(webhook)", "track(created)", "untrack", "retry", "pollRefused"]
    }()

    /// A short, stable name of an input kind (the coverage's "input").
    static func label(_ input: BookInput) -> String {
        switch input {
        case .snapshot(let snapshot, _):
            switch snapshot.normalised {
            case .gone: return "snapshot(gone)"
            case .present: return snapshot.isFinished ? "snapshot(finished)" : "snapshot(unfinished)"
            }
        case .webhook(let hint, _):
            return "webhook(\(hint.event)\(hint.authenticated ? "" : ",unauthenticated"))"
        case .analytics(_, let outcome, _):
            switch outcome {
            case .stored: return "analytics(stored)"
            case .notReady: return "analytics(notReady)"
            case .transientError: return "analytics(transient)"
            case .permanentError: return "analytics(permanent)"
            }
        case .command(let command):
            switch command {
            case .track(let source): return "track(\(source.rawValue))"
            case .untrack: return "untrack"
            case .retry: return "retry"
            }
        case .pollRefused: return "pollRefused"
        }
    }

    /// The action's case name (written out: `String(describing:)` reflects, a few percent of a
    /// search).
    static func label(_ action: BookAction) -> String {
        switch action {
        case .pollNow: "pollNow"
        case .schedulePoll: "schedulePoll"
        case .postponePoll: "postponePoll"
        case .pollWithin: "pollWithin"
        case .openAnalyticsJob: "openAnalyticsJob"
        case .supersedeAnalyticsJob: "supersedeAnalyticsJob"
        case .expediteAnalyticsJob: "expediteAnalyticsJob"
        case .confirmAnalyticsJob: "confirmAnalyticsJob"
        case .retryAnalyticsJob: "retryAnalyticsJob"
        case .rearmAnalyticsJob: "rearmAnalyticsJob"
        case .completeAnalyticsJob: "completeAnalyticsJob"
        case .failAnalyticsJob: "failAnalyticsJob"
        case .notifyRetrieved: "notifyRetrieved"
        case .stopWatching: "stopWatching"
        case .webhookCoverage: "webhookCoverage"
        case .bookFinishCoverage: "bookFinishCoverage"
        case .warn: "warn"
        }
    }
}
