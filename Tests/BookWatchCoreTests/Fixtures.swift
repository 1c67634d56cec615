import BookWatchCore
import Foundation

/// Small builders that keep the machine tests readable.
enum Fixture {
    static let uuid = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!
    static let t0 = Date(timeIntervalSince1970: 1_774_000_000)

    static func doc(_ n: Int) -> DocumentRef { DocumentRef(pk: 1000 + n, uuid: docUUID(n)) }

    static func docUUID(_ n: Int) -> String {
        let digits = String(n)
        return "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - digits.count) + digits
    }

    static func snapshot(_ status: BookStatus, _ docs: [(Int, DocumentStatus)]) -> BookInput {
        .snapshot(.present(pk: 42, status: status, documents: docs.map { DocumentSnapshot(ref: doc($0.0), status: $0.1) }))
    }

    static func verified(_ docs: Int...) -> BookInput {
        snapshot(.verified, docs.map { ($0, .verificationComplete) })
    }

    static func verifying(finished: [Int], unfinished: [Int]) -> BookInput {
        snapshot(.verifying, finished.map { ($0, .verificationComplete) } + unfinished.map { ($0, .processing) })
    }

    static func hint(_ event: WebhookEvent, doc n: Int? = nil, status: DocumentStatus? = nil) -> BookInput {
        .webhook(WebhookHint(event: event, document: n.map(doc), documentStatus: status, authenticated: true))
    }

    /// A machine driven through `inputs`, returning the actions of the last input.
    /// The machine after `inputs`, and the actions of the last one (without the
    /// `.webhookCoverage` and `.bookFinishCoverage` observations, which have tests of their own).
    static func machine(after inputs: [BookInput]) -> (BookMachine, [BookAction]) {
        var machine = BookMachine(uuid: uuid)
        var last: [BookAction] = []
        for (i, input) in inputs.enumerated() {
            // One second apart, and a doubt (gone, a reopen without a new document) confirmed by
            // the next answer: `BookMachineTests` "doubts" test the gap itself.
            last = machine.apply(input, at: t0.addingTimeInterval(Double(i)), confirmationGap: 1)
        }
        return (machine, withoutCoverage(last))
    }

    /// `actions` without the loss estimate's observations.
    static func withoutCoverage(_ actions: [BookAction]) -> [BookAction] {
        actions.filter {
            switch $0 {
            case .webhookCoverage, .bookFinishCoverage: false
            default: true
            }
        }
    }
}

extension Date {
    func plus(_ seconds: TimeInterval) -> Date { addingTimeInterval(seconds) }
}
