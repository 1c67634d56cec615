import struct Foundation.Date
import struct Foundation.TimeInterval

/// The per-Book state machine: `(state, input, now) -> (state, [action])`, with no I/O.
///
/// Invariants (checked by property tests):
/// - webhooks are hints: they change only `hint`s (cleared by the next snapshot, except a fresh
///   "finished" one a lagging snapshot contradicts: see `statusLag`), `lastWebhookAt`
///   and the actions returned; the phase, generation and documents follow the snapshots alone.
///   The one exception is opt-in (`trustingWebhooks`, which the watcher passes only while it
///   measures webhooks as reliable): a finished book-level body that names every document the
///   machine knows finishes the generation like a snapshot would;
/// - at most one analytics job is opened per generation (`lastOpenedGeneration` only grows and an
///   opening always uses a generation above it), trusted or not;
/// - `complete` is reached only from `retrieving`, which is entered only by a finished snapshot
///   (or, trusting webhooks, such a body).
///
/// ```swift
/// var book = BookMachine(uuid: uuid)
/// let actions = book.apply(.command(.track(.operator)), at: now)   // [.pollNow(.operator)]
/// ```
public struct BookMachine: Hashable, Sendable {
    /// The Book.
    public let uuid: BookUUID
    /// The Book's primary key at Ocrolus, once an answer or webhook named it.
    public internal(set) var pk: Int?
    /// Where the Book is in its life (`BookPhase`).
    public internal(set) var phase: BookPhase
    /// The current generation; a reopen after finishing starts the next one.
    public internal(set) var generation: Int
    /// The highest generation an analytics job was opened for (0: none).
    public internal(set) var lastOpenedGeneration: Int
    /// The book status of the last answer (or trusted webhook).
    public internal(set) var bookStatus: BookStatus?
    /// Every document known: confirmed by an answer, or only hinted by a webhook since.
    public internal(set) var documents: [TrackedDocument]
    /// When a webhook about the Book last arrived.
    public internal(set) var lastWebhookAt: Date?
    /// When a status answer was last applied.
    public internal(set) var lastSnapshotAt: Date?
    /// When the current generation was seen finished (for the completion-time histogram).
    public internal(set) var finishedAt: Date?
    /// Why the Book failed (a refused poll, analytics given up), while it is `failed`.
    public internal(set) var failureReason: String?
    /// Tracked when the lender created it (`track --new`): every document it will have is uploaded
    /// while watched, so even its first snapshot says whether webhooks announced them.
    public internal(set) var watchedSinceCreation: Bool
    /// An odd answer waiting for a second one to agree (gone, or a reopen without a new document).
    public internal(set) var doubt: Doubt?
    /// Whether a book-level finished event (`book.verified`) announced the current (or, while an
    /// unannounced one waits out `statusLag`, the last) generation's finish: the loss estimate's evidence where
    /// a deployment receives no document events (`.bookFinishCoverage`).
    public internal(set) var finishEvidence: FinishEvidence?

    /// What is known of a finish's announcement.
    public enum FinishEvidence: Hashable, Sendable {
        /// The event arrived while the generation was unfinished.
        case announced
        /// A status answer showed the finish at this time with no event before it: if none
        /// arrives within `statusLag` (events are not ordered with answers) it was not announced.
        case unannounced(since: Date)
    }

    /// How long after a Book's last webhook a snapshot may still lag behind it: a document's
    /// "finished" hint survives a snapshot taken within this that shows the document in progress.
    public static let statusLag: TimeInterval = 300

    /// The confirmation gap when none is given: the default poll minimum.
    public static let defaultConfirmationGap: TimeInterval = 60

    /// True when the Book failed before any job was opened for its generation (a refused status
    /// poll): `retry` then watches it again instead of re-arming a job.
    public var failedWithoutJob: Bool { phase == .failed && lastOpenedGeneration < generation }

    /// A newly tracked Book, nothing known yet.
    public init(uuid: BookUUID, pk: Int? = nil) {
        self = .fresh(uuid: uuid, pk: pk, afterGeneration: 0)
    }

    /// A newly tracked Book whose generations continue after `afterGeneration` (the last one an
    /// earlier tracking opened a job for), so a (Book, generation) key is never reused.
    public static func fresh(uuid: BookUUID, pk: Int? = nil, afterGeneration last: Int) -> BookMachine {
        BookMachine(
            uuid: uuid,
            pk: pk,
            phase: .tracking,
            generation: last + 1,
            lastOpenedGeneration: last,
            bookStatus: nil,
            documents: [],
            lastWebhookAt: nil,
            lastSnapshotAt: nil,
            finishedAt: nil,
            failureReason: nil,
            watchedSinceCreation: false,
            doubt: nil
        )
    }

    /// Restores a machine from storage.
    public init(
        uuid: BookUUID,
        pk: Int?,
        phase: BookPhase,
        generation: Int,
        lastOpenedGeneration: Int,
        bookStatus: BookStatus?,
        documents: [TrackedDocument],
        lastWebhookAt: Date?,
        lastSnapshotAt: Date?,
        finishedAt: Date?,
        failureReason: String?,
        watchedSinceCreation: Bool = false,
        doubt: Doubt? = nil,
        finishEvidence: FinishEvidence? = nil
    ) {
        self.watchedSinceCreation = watchedSinceCreation
        self.doubt = doubt
        self.finishEvidence = finishEvidence
        self.uuid = uuid
        self.pk = pk
        self.phase = phase
        self.generation = max(1, generation)
        self.lastOpenedGeneration = max(0, lastOpenedGeneration)
        self.bookStatus = bookStatus
        self.documents = documents
        self.lastWebhookAt = lastWebhookAt
        self.lastSnapshotAt = lastSnapshotAt
        self.finishedAt = finishedAt
        self.failureReason = failureReason
    }

    /// Documents known from the last snapshot (hint-only ones are not counted).
    public var confirmedDocuments: [TrackedDocument] { documents.filter(\.isConfirmed) }

    /// The part of the state that only snapshots, analytics outcomes and commands may change.
    public var truth: Truth {
        Truth(
            pk: pk,
            phase: phase,
            generation: generation,
            lastOpenedGeneration: lastOpenedGeneration,
            bookStatus: bookStatus,
            documents: confirmedDocuments.map {
                Truth.Document(ref: $0.ref, status: $0.status, covered: $0.covered)
            },
            failureReason: failureReason,
            doubt: doubt
        )
    }

    /// See `truth`.
    public struct Truth: Hashable, Sendable {
        /// A document as the truth counts it.
        public struct Document: Hashable, Sendable {
            /// Which document.
            public var ref: DocumentRef
            /// Its status from the last answer.
            public var status: DocumentStatus?
            /// Whether it belonged to the Book when its generation finished.
            public var covered: Bool
        }
        /// The Book's pk.
        public var pk: Int?
        /// The Book's phase.
        public var phase: BookPhase
        /// The current generation.
        public var generation: Int
        /// The highest generation a job was opened for.
        public var lastOpenedGeneration: Int
        /// The book status of the last answer.
        public var bookStatus: BookStatus?
        /// The documents answers confirmed.
        public var documents: [Document]
        /// Why the Book failed, if it did.
        public var failureReason: String?
        /// An odd answer waiting for a second one.
        public var doubt: Doubt?
    }

    /// Whether `snapshot` shows the current generation as it finished: finished, every document it
    /// lists one the generation covered, and none of those missing. What a retrieval's view after
    /// must show to confirm the analytics fetched before it, whether or not the answer could be
    /// applied (one dated before the last applied answer by its replica's clock is dropped unread,
    /// and one showing a covered document unfinished is held back as a doubt; what it shows is
    /// still Ocrolus's state after the analytics answered).
    public func showsFinishedGeneration(_ snapshot: BookSnapshot) -> Bool {
        guard case .present(_, _, let listed) = snapshot, snapshot.isFinished else { return false }
        return listsOnlyCoveredDocuments(listed) && !missesCoveredDocument(listed)
    }

    /// Every document in `listed` is one the generation covered.
    func listsOnlyCoveredDocuments(_ listed: [DocumentSnapshot]) -> Bool {
        listed.allSatisfy { item in documents.contains { $0.covered && $0.ref.matches(item.ref) } }
    }

    /// A document the generation covered (and an answer confirmed) is missing from `listed`.
    func missesCoveredDocument(_ listed: [DocumentSnapshot]) -> Bool {
        documents.contains { known in known.isConfirmed && known.covered && !listed.contains { known.ref.matches($0.ref) } }
    }

    /// Feeds one input to the machine and returns what must be done, in order.
    ///
    /// - Parameters:
    ///   - trustingWebhooks: webhooks are measured reliable now (the watcher's loss estimate): an
    ///     authenticated `book.verified`/`book.completed` body listing every known document
    ///     finished counts as the finish (no status call), and a document event that may be the last
    ///     asks for a poll soon instead of at once (the Book's own finished event usually comes first).
    ///   - answeredAsOf: for a snapshot, when its request was sent (an answer is dated by its
    ///     question, not its arrival); `now` when not given.
    ///   - confirmationGap: how far apart two answers must have been sent to confirm a doubt (the
    ///     poll minimum).
    public mutating func apply(
        _ input: BookInput,
        at now: Date,
        trustingWebhooks: Bool = false,
        answeredAsOf: Date? = nil,
        confirmationGap: TimeInterval = Self.defaultConfirmationGap
    ) -> [BookAction] {
        let settled = settleFinishEvidence(at: now)
        switch input {
        case .snapshot(let snapshot, _):
            return settled + applySnapshot(snapshot.normalised, at: now, asOf: answeredAsOf ?? now, gap: confirmationGap)
        case .pollRefused(let reason, _):
            return settled + applyRefusal(reason, asOf: answeredAsOf ?? now, gap: confirmationGap)
        case .webhook(let hint, _):
            return settled + applyHint(hint, at: now, trusted: trustingWebhooks)
        case .analytics(let generation, let outcome, _):
            return settled + applyAnalytics(outcome, generation: generation, at: now)
        case .command(let command):
            return settled + applyCommand(command)
        }
    }
}
