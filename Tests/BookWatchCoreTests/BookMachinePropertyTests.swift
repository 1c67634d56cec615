import BookWatchCore
import Foundation
import PropertyBased
import Testing

/// Property tests of the three properties in architecture.md, over generated histories.
///
/// Histories are built from small integers so that shrinking reduces them to the shortest
/// history (and the simplest statuses) that still fails; `History.description` prints it readably.
@Suite(.shrinking) struct BookMachinePropertyTests {
    static let histories = 1_500

    /// One history: inputs in arrival order.
    struct History: CustomStringConvertible, Sendable {
        var inputs: [BookInput]
        var description: String {
            "History(\(inputs.count) inputs):\n" + inputs.enumerated().map { "  \($0.offset): \(Self.describe($0.element))" }.joined(separator: "\n")
        }
        static func describe(_ input: BookInput) -> String {
            switch input {
            case .snapshot(.gone, _): return "snapshot gone"
            case .snapshot(.present(_, let status, let docs), _):
                return "snapshot \(status) [" + docs.map { "\($0.ref.pk ?? 0)=\($0.status)" }.joined(separator: ", ") + "]"
            case .webhook(let hint, _):
                return "webhook \(hint.event) doc=\(hint.document?.pk.map(String.init) ?? "-") status=\(hint.documentStatus?.rawValue ?? "-")"
                    + (hint.listedDocuments.isEmpty
                        ? "" : " listed [" + hint.listedDocuments.map { "\($0.ref.pk ?? 0)=\($0.status)" }.joined(separator: ", ") + "]")
            case .analytics(let generation, let outcome, _): return "analytics gen \(generation): \(outcome)"
            case .command(let command): return "command \(command)"
            case .pollRefused(let reason, _): return "poll refused: \(reason)"
            }
        }

        var withoutHints: [BookInput] {
            inputs.filter { if case .webhook = $0 { false } else { true } }
        }
    }

    // MARK: generators

    static let documentStatuses: [DocumentStatus] = [
        .processing, .verificationComplete, .rejected, .uploaded, .deleted, .unknown("NEW_STATE"), .failed,
    ]
    static let bookStatuses: [BookStatus] = [.verified, .verifying, .verified, .deleted, .upload, .unknown("ARCHIVING")]
    static let events: [WebhookEvent] = [
        .documentVerified, .bookVerified, .bookCompleted, .documentUploaded, .documentStatus, .bookAnalyticsGenerated,
        .documentClassified, .bookClassified, .unknown("book.new_thing"), .documentSignalFound,
    ]

    static let snapshotGen = zip(Gen.int(in: 0...5), Gen.int(in: 0...6).array(of: 1...4)).map { book, docs -> BookInput in
        let status = bookStatuses[book]
        if status == .deleted { return .snapshot(.gone) }
        return .snapshot(
            .present(
                pk: 42,
                status: status,
                documents: docs.enumerated().map {
                    DocumentSnapshot(ref: Fixture.doc($0.offset + 1), status: documentStatuses[$0.element])
                }
            )
        )
    }

    /// Hints, a third of them with a body listing documents (`uploaded_docs[]`): trusted, a
    /// finished book-level body listing every known document finishes the Book.
    static let hintGen = zip(Gen.int(in: 0...9), Gen.int(in: 0...5), Gen.int(in: 0...7), Gen.int(in: 0...6).array(of: 0...4))
        .map { event, doc, status, listed -> BookInput in
            .webhook(
                WebhookHint(
                    event: events[event],
                    document: doc == 0 ? nil : Fixture.doc(doc),
                    documentStatus: status == 0 ? nil : documentStatuses[status - 1],
                    listedDocuments: listed.count < 2
                        ? []
                        : listed.enumerated().map {
                            DocumentSnapshot(ref: Fixture.doc($0.offset + 1), status: documentStatuses[$0.element])
                        },
                    // Mostly signed deliveries; an unauthenticated one never stands in for a status call.
                    authenticated: (event + doc) % 4 != 0
                )
            )
        }

    /// Analytics outcomes and operator commands: inputs that are not hints.
    static let otherGen = zip(Gen.int(in: 0...7), Gen.int(in: 1...3)).map { kind, generation -> BookInput in
        switch kind {
        case 0: .analytics(generation: generation, .stored)
        case 1: .analytics(generation: generation, .notReady)
        case 2: .analytics(generation: generation, .transientError("503"))
        case 3: .analytics(generation: generation, .permanentError("403"))
        case 4: .command(.retry)
        case 5: .command(.track(.operator))
        case 6: .pollRefused("403 code 2102")
        default: .analytics(generation: generation, .stored)
        }
    }

    /// Any mixture: hints are ~half of the inputs, so they are duplicated, reordered and dropped freely.
    static let historyGen = zip(Gen.int(in: 0...5), snapshotGen, hintGen, otherGen)
        .map { pick, snapshot, hint, other -> BookInput in
            switch pick {
            case 0, 1: snapshot
            case 2, 3, 4: hint
            default: other
            }
        }
        .array(of: 0...40)
        .map { History(inputs: $0) }

    /// Inputs are a second apart: doubts (gone, a reopen without a new document) are confirmed by
    /// an answer three steps later, so generated histories reach both outcomes.
    static let confirmationGap: TimeInterval = 3

    static func run(_ inputs: [BookInput], trusted: Bool = false) -> (BookMachine, [[BookAction]]) {
        var machine = BookMachine(uuid: Fixture.uuid)
        var log: [[BookAction]] = []
        for (input, at) in zip(inputs, times(inputs)) {
            log.append(machine.apply(input, at: at, trustingWebhooks: trusted, confirmationGap: confirmationGap))
        }
        return (machine, log)
    }

    /// When each input happens: every input that is not a hint a second after the one before, hints
    /// at the time of the input before them, so dropping or moving hints leaves every other input's
    /// time (and so which doubts are confirmed) unchanged.
    static func times(_ inputs: [BookInput]) -> [Date] {
        var clock = 0
        return inputs.map { input in
            if case .webhook = input {} else { clock += 1 }
            return Fixture.t0.addingTimeInterval(Double(clock))
        }
    }

    // MARK: properties

    @Test func hintsInAnyOrderDuplicatedOrLostEndInTheSameStateAsTheSnapshotsAlone() async {
        var checked = 0
        await propertyCheck(count: Self.histories, input: Self.historyGen) { history in
            checked += 1
            let (withHints, _) = Self.run(history.inputs)
            let (alone, _) = Self.run(history.withoutHints)
            #expect(withHints.truth == alone.truth, "\(history)")
        }
        print("property 1 (hints never change the outcome): \(checked) generated histories checked")
        #expect(checked == Self.histories)
    }

    @Test func hintShufflesOfOneHistoryAgree() async {
        // The same snapshots with the hints of the history shuffled, duplicated and partly dropped.
        var checked = 0
        await propertyCheck(count: Self.histories, input: Self.historyGen, Gen.int(in: 0...1_000_000)) { history, seed in
            checked += 1
            var rng = SeededRandom(seed: UInt64(seed))
            let hints = history.inputs.filter { if case .webhook = $0 { true } else { false } }
            var mangled = hints.flatMap { hint in rng.next() % 4 == 0 ? [hint, hint] : (rng.next() % 3 == 0 ? [] : [hint]) }
            mangled.shuffle(using: &rng)
            var remix: [BookInput] = []
            for input in history.withoutHints {
                if !mangled.isEmpty, rng.next() % 2 == 0 { remix.append(mangled.removeLast()) }
                remix.append(input)
            }
            remix += mangled
            #expect(Self.run(remix).0.truth == Self.run(history.inputs).0.truth, "\(history)")
        }
        print("property 1b (shuffled, duplicated, dropped hints): \(checked) generated histories checked")
        #expect(checked == Self.histories)
    }

    /// Untrusted and trusting webhooks alike.
    @Test(arguments: [false, true]) func atMostOneAnalyticsJobIsOpenedPerGeneration(trusted: Bool) async {
        var checked = 0
        await propertyCheck(count: Self.histories, input: Self.historyGen) { history in
            checked += 1
            let (machine, log) = Self.run(history.inputs, trusted: trusted)
            let opened = log.flatMap { $0 }.compactMap { action -> Int? in
                if case .openAnalyticsJob(let generation) = action { generation } else { nil }
            }
            #expect(Set(opened).count == opened.count, "\(history)")
            #expect(opened == opened.sorted(), "\(history)")
            #expect(opened.last.map { $0 == machine.lastOpenedGeneration } ?? (machine.lastOpenedGeneration == 0))
        }
        print("property 2 (one job per generation): \(checked) generated histories checked")
        #expect(checked == Self.histories)
    }

    /// Untrusted and trusting webhooks alike.
    @Test(arguments: [false, true]) func neverCompleteWhileAKnownDocumentIsUnfinished(trusted: Bool) async {
        var checked = 0
        await propertyCheck(count: Self.histories, input: Self.historyGen) { history in
            checked += 1
            var machine = BookMachine(uuid: Fixture.uuid)
            for (i, (input, at)) in zip(history.inputs, Self.times(history.inputs)).enumerated() {
                let knownBefore = machine.documents
                let wasFinished = machine.phase == .complete || machine.phase == .retrieving
                _ = machine.apply(input, at: at, trustingWebhooks: trusted, confirmationGap: Self.confirmationGap)
                if case .webhook = input, !wasFinished, machine.phase == .retrieving {
                    // Only a trusted body finishes a Book, and never one missing a document it knew.
                    #expect(trusted, "after step \(i) of \(history)")
                    for known in knownBefore where known.status != .deleted {
                        #expect(machine.documents.contains { $0.ref.matches(known.ref) }, "after step \(i) of \(history)")
                    }
                }
                if machine.phase == .complete || machine.phase == .retrieving {
                    let unfinished = machine.confirmedDocuments.filter { !($0.status?.isFinished ?? false) }
                    #expect(unfinished.isEmpty, "after step \(i) of \(history)")
                    #expect(machine.bookStatus == .verified, "after step \(i) of \(history)")
                }
            }
        }
        print("property 3 (never complete with an unfinished document): \(checked) generated histories checked")
        #expect(checked == Self.histories)
    }
}
