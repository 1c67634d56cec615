import BookWatchCore
import Foundation

/// One simulated document and the times its status changes (seconds from the scenario start).
public struct SimDocument: Sendable {
    /// The document's pk.
    public let pk: Int
    /// The document's uuid.
    public let uuid: String
    /// Its file name.
    public let name: String
    /// When it is uploaded.
    public let uploadAt: Double
    /// When it is classified.
    public let classifyAt: Double
    /// When it reaches its final status.
    public let finishAt: Double
    /// `VERIFICATION_COMPLETE`, `REJECTED` or `FAILED`.
    public let outcome: DocumentStatus

    /// The status at `t`, or nil before the upload.
    public func status(at t: Double) -> DocumentStatus? {
        guard t >= uploadAt else { return nil }
        if t >= finishAt { return outcome }
        let span = finishAt - uploadAt
        if t >= uploadAt + 0.7 * span { return .verifying }
        if t >= classifyAt { return .classified }
        if t >= uploadAt + 0.1 * span { return .processing }
        return .uploaded
    }
}

/// One simulated Book: its documents, its generations (each VERIFIED episode), and its deletion.
public struct SimBook: Sendable {
    /// The Book's index in the scenario.
    public let index: Int
    /// Its pk.
    public let pk: Int
    /// Its uuid.
    public let uuid: BookUUID
    /// Its name.
    public let name: String
    /// When it is created.
    public let createdAt: Double
    /// Its documents, in upload order.
    public let documents: [SimDocument]
    /// When each generation became VERIFIED, and when its analytics became ready.
    public let generations: [(verifiedAt: Double, analyticsReadyAt: Double)]
    /// When it is deleted, if it is.
    public let deletedAt: Double?
    /// The webhook flavour it sends (org-level or account-level).
    public let flavour: WebhookFlavour
    /// How a deleted Book answers a status call: 200 with DELETED, or an error with code 1401.
    public let deletedAnswersWithStatus: Bool
    /// The older word for a finished Book: its status answers say `BOOK_COMPLETE`, not `VERIFIED`.
    public var saysBookComplete = false

    /// True from its deletion on.
    public func isDeleted(at t: Double) -> Bool { deletedAt.map { t >= $0 } ?? false }

    /// Documents uploaded by `t`, with their statuses.
    public func documentStatuses(at t: Double) -> [(SimDocument, DocumentStatus)] {
        documents.compactMap { document in document.status(at: t).map { (document, $0) } }
    }

    /// Its book status at `t`.
    public func bookStatus(at t: Double) -> BookStatus {
        if isDeleted(at: t) { return .deleted }
        let statuses = documentStatuses(at: t)
        if statuses.isEmpty { return .created }
        return statuses.allSatisfy({ $0.1.isFinished }) ? .verified : .verifying
    }

    /// The generation in force at `t` (0 before the first VERIFIED): the number of VERIFIED
    /// episodes begun by then.
    public func generation(at t: Double) -> Int {
        generations.filter { $0.verifiedAt <= t }.count
    }

    /// Whether analytics answer 200 at `t`: VERIFIED, and the current generation's analytics ready.
    public func analyticsReady(at t: Double) -> Bool {
        guard bookStatus(at: t) == .verified else { return false }
        let g = generation(at: t)
        guard g > 0 else { return false }
        return t >= generations[g - 1].analyticsReadyAt
    }

    /// Generations that finished (became VERIFIED) before the Book was deleted.
    public var finishedGenerations: Int {
        generations.filter { generation in deletedAt.map { generation.verifiedAt < $0 } ?? true }.count
    }
}

/// A seeded scenario: the same seed always yields the same Books, documents and times.
public struct Scenario: Sendable {
    /// The Books, by index.
    public let books: [SimBook]

    /// Every VERIFIED episode of a Book's documents, in order: each begins when the last
    /// unfinished document uploaded by then finishes, and ends at the next upload. An episode
    /// that begins when a declared generation does keeps its analytics delay; others (early
    /// documents finished before later ones were uploaded) take the first generation's.
    static func episodes(
        of documents: [SimDocument],
        declared: [(verifiedAt: Double, analyticsReadyAt: Double)]
    ) -> [(verifiedAt: Double, analyticsReadyAt: Double)] {
        let firstDelay = declared.first.map { $0.analyticsReadyAt - $0.verifiedAt } ?? 0
        let moments = Set(documents.flatMap { [$0.uploadAt, $0.finishAt] }).sorted()
        var episodes: [(verifiedAt: Double, analyticsReadyAt: Double)] = []
        var verified = false
        for t in moments {
            let uploaded = documents.filter { $0.uploadAt <= t }
            let now = !uploaded.isEmpty && uploaded.allSatisfy { $0.finishAt <= t }
            if now && !verified {
                let delay = declared.first { $0.verifiedAt == t }.map { $0.analyticsReadyAt - $0.verifiedAt } ?? firstDelay
                episodes.append((verifiedAt: t, analyticsReadyAt: t + delay))
            }
            verified = now
        }
        return episodes
    }

    /// The scenario `config`'s seed draws.
    public init(config: SimulationConfig) {
        var rng = SeededRandom(seed: config.seed)
        var books: [SimBook] = []
        var nextDocumentPK = 133_000_000
        for index in 0..<config.books {
            let createdAt = rng.uniform(0...max(config.bookSpread, 0))
            let documentCount = Int(rng.uniform(Double(config.documentsPerBook.lowerBound)...Double(config.documentsPerBook.upperBound) + 0.999))
            func makeDocument(uploadAt: Double, number: Int) -> SimDocument {
                nextDocumentPK += 1
                let duration = rng.uniform(config.processingTime)
                let roll = rng.unit()
                let outcome: DocumentStatus =
                    roll < config.failFraction
                    ? .failed
                    : roll < config.failFraction + config.rejectFraction ? .rejected : .verificationComplete
                return SimDocument(
                    pk: nextDocumentPK,
                    uuid: rng.uuid(),
                    name: "statement-\(number).pdf",
                    uploadAt: uploadAt,
                    classifyAt: uploadAt + 0.4 * duration,
                    finishAt: uploadAt + duration,
                    outcome: outcome
                )
            }
            var documents = (0..<max(1, documentCount)).map { number in
                makeDocument(uploadAt: createdAt + rng.uniform(0...60), number: number + 1)
            }
            let firstVerified = documents.map(\.finishAt).max() ?? createdAt
            var generations = [(verifiedAt: firstVerified, analyticsReadyAt: firstVerified + rng.uniform(config.analyticsDelay))]
            // Each reopen adds one Document some time after the previous generation finished
            // (with a short `reopenAfter`, while its analytics are still 425).
            var lastVerified = firstVerified
            for _ in 0..<max(config.maxReopens, 0) {
                guard rng.chance(config.reopenFraction) else { break }
                let reopenAt = lastVerified + rng.uniform(config.reopenAfter)
                let added = makeDocument(uploadAt: reopenAt, number: documents.count + 1)
                documents.append(added)
                generations.append((verifiedAt: added.finishAt, analyticsReadyAt: added.finishAt + rng.uniform(config.analyticsDelay)))
                lastVerified = added.finishAt
            }
            // The truth is what the status endpoint shows: a Book is VERIFIED whenever every
            // Document uploaded so far has finished, so an early Document finishing before a
            // later one is uploaded makes a VERIFIED episode of its own (a generation).
            generations = Self.episodes(of: documents, declared: generations)
            var deletedAt: Double?
            if rng.chance(config.deleteFraction) {
                // Deleted while processing or some time after finishing.
                deletedAt = createdAt + rng.uniform(60...(firstVerified - createdAt + 1800))
            }
            let flavour: WebhookFlavour = config.flavour == .mixed ? (rng.chance(0.5) ? .org : .account) : config.flavour
            let uuid = BookUUID(rng.uuid()) ?? BookUUID("00000000-0000-4000-8000-000000000000")!  // rng.uuid() is well-formed
            var book = SimBook(
                index: index,
                pk: 71_400_000 + index,
                uuid: uuid,
                name: "Application #\(10_000 + index)",
                createdAt: createdAt,
                documents: documents,
                generations: generations,
                deletedAt: deletedAt,
                flavour: flavour,
                deletedAnswersWithStatus: rng.chance(0.5)
            )
            // Drawn only when asked for, so existing seeds keep their scenarios.
            if config.bookCompleteFraction > 0 { book.saysBookComplete = rng.chance(config.bookCompleteFraction) }
            books.append(book)
        }
        self.books = books
    }
}
