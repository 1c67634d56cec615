import struct Foundation.Date
import struct Foundation.TimeInterval

extension BookMachine {
    // MARK: Snapshots: the truth

    mutating func applySnapshot(_ snapshot: BookSnapshot, at now: Date, asOf: Date, gap: TimeInterval) -> [BookAction] {
        let isFirstSnapshot = lastSnapshotAt == nil
        switch snapshot {
        case .gone:
            // Gone only when a second answer, asked at least `gap` after the first, agrees: one odd
            // answer (a misrouted request, a replica's hiccup) must never delete a Book for good.
            lastSnapshotAt = asOf
            if phase == .deleted { return markGone(firstSeen: asOf) }
            if let doubt, doubt.kind == .gone {
                if asOf.timeIntervalSince(doubt.since) >= gap { return markGone(firstSeen: doubt.since) }
                return [.schedulePoll(.soon)]
            }
            doubt = Doubt(kind: .gone, since: asOf)
            return [.warn("Ocrolus answered that the Book is gone; a second look confirms"), .schedulePoll(.soon)]
        case .present(let pk, let status, let listed):
            var actions: [BookAction] = []
            if doubt?.kind == .gone || doubt?.kind == .refused { doubt = nil }
            if phase == .deleted {
                // The snapshot wins: the Book exists after all. Retrieved before it was marked
                // deleted, and finished with the same documents: it is that generation still.
                let sameDocuments = listsOnlyCoveredDocuments(listed)
                if finishedAt != nil && snapshot.isFinished && sameDocuments && generation == lastOpenedGeneration {
                    if let pk { self.pk = pk }
                    lastSnapshotAt = asOf
                    bookStatus = status
                    phase = .complete
                    replaceDocuments(with: listed)
                    return [.warn("book reappeared after being seen deleted; its analytics were retrieved"), .schedulePoll(.retention)]
                }
                // Otherwise start over in a fresh generation. A job the deletion superseded (the
                // Book was retrieving, or failed) kept what it had stored; never notified, it goes
                // now, or the fresh generation would store the same analytics a second time.
                actions.append(.warn("book reappeared after being seen deleted"))
                if finishedAt == nil, lastOpenedGeneration > 0, generation == lastOpenedGeneration {
                    actions.append(.supersedeAnalyticsJob(generation: lastOpenedGeneration))
                }
                phase = .tracking
                failureReason = nil
                if generation <= lastOpenedGeneration { generation = lastOpenedGeneration + 1 }
            }
            if let pk { self.pk = pk }
            if let held = holdBackRegression(snapshot, listed: listed, asOf: asOf, gap: gap) { return actions + held }
            lastSnapshotAt = asOf
            bookStatus = status
            if let coverage = coverage(of: listed, firstSnapshot: isFirstSnapshot) { actions.append(coverage) }
            // The status endpoint can lag behind the events: a document announced finished moments
            // ago may still show in progress, and an answer whose question left before the webhook
            // arrived cannot show it at all. Its hint then survives this snapshot (it is not the
            // truth, but it is what lets the next poll count the announcement) and a poll soon asks again.
            let lagging = lastWebhookAt.map { $0 >= asOf || now.timeIntervalSince($0) <= Self.statusLag } ?? false
            replaceDocuments(with: listed, keepingFinishedHints: lagging)
            for document in listed where document.status.isUnknown {
                actions.append(.warn("unknown document status '\(document.status.rawValue)' for \(document.ref)"))
            }
            if case .unknown(let raw) = status {
                actions.append(.warn("unknown book status '\(raw)'"))
            }
            let finishing = snapshot.isFinished && (phase == .tracking || phase == .processing) && (!isFirstSnapshot || watchedSinceCreation)
            let announced = finishEvidence == .announced
            actions += advance(finished: snapshot.isFinished, at: now)
            if finishing { actions += noteFinishShown(announced: announced, at: now) }
            if phase == .processing, documents.contains(where: { $0.hint?.isFinished == true }) { actions.append(.pollWithin(.soon)) }
            return actions
        }
    }

    /// A finished generation shown unfinished again, or listed without a Document it covered, is
    /// applied only when the answer has a Document the Book did not have, or when two answers
    /// asked at least `gap` apart agree. An answer asked
    /// before the generation finished (in flight across a trusted body) is stale. Answers the
    /// actions that hold the answer back (the Book keeps its state and is asked again soon), or nil
    /// when the answer is to be applied.
    private mutating func holdBackRegression(
        _ snapshot: BookSnapshot,
        listed: [DocumentSnapshot],
        asOf: Date,
        gap: TimeInterval
    )
        -> [BookAction]?
    {
        guard phase == .retrieving || phase == .complete || (phase == .failed && !failedWithoutJob) else { return nil }
        let newDocument = listed.contains { item in !documents.contains { $0.isConfirmed && $0.ref.matches(item.ref) } }
        // A document the generation covered missing from the listing (a short page, `docs: []`):
        // applied at once, it would be forgotten with its coverage, and its return in the next
        // answer would read as a new document, a new generation, the same analytics again.
        let lostDocument = missesCoveredDocument(listed)
        if (snapshot.isFinished && !lostDocument) || newDocument {
            if doubt?.kind == .reopen { doubt = nil }
            return nil
        }
        if let finishedAt, asOf < finishedAt {
            return [.warn("dropped a status answer asked before the generation finished"), .schedulePoll(.soon)]
        }
        if let doubt, doubt.kind == .reopen {
            guard asOf.timeIntervalSince(doubt.since) >= gap else { return [.schedulePoll(.soon)] }
            self.doubt = nil
            return nil
        }
        doubt = Doubt(kind: .reopen, since: asOf)
        if lostDocument {
            return [.warn("a finished document is missing from the answer; a second answer confirms"), .schedulePoll(.soon)]
        }
        return [.warn("a finished document shows unfinished again; a second answer confirms the reopen"), .schedulePoll(.soon)]
    }

    /// Of the documents this snapshot shows newly verified, those a webhook had announced and those
    /// none had. Only successes count: they have a documented event (`document.verification_succeeded`,
    /// `DOC_VERIFIED`), rejections may have none. Not for a Book's first snapshot (what finished
    /// before it was watched says nothing about webhooks), unless it was watched since its creation.
    private func coverage(of listed: [DocumentSnapshot], firstSnapshot: Bool) -> BookAction? {
        guard !firstSnapshot || watchedSinceCreation else { return nil }
        var announced = 0
        var missed = 0
        for document in listed where document.status.progress == .succeeded {
            let prior = documents.first { $0.ref.matches(document.ref) }
            if prior?.status?.isFinished == true { continue }
            if prior?.hint?.isFinished == true { announced += 1 } else { missed += 1 }
        }
        return announced + missed > 0 ? .webhookCoverage(announced: announced, missed: missed) : nil
    }

    /// Moves the phase after the documents were replaced by a snapshot.
    private mutating func advance(finished: Bool, at now: Date) -> [BookAction] {
        if phase == .tracking || phase == .processing || failedWithoutJob {
            failureReason = nil
            if finished { return finishGeneration(at: now) }
            phase = .processing
            return [.schedulePoll(.active)]
        }
        switch phase {
        case .tracking, .processing:
            return []  // handled above
        case .retrieving, .complete, .failed:
            let gainedDocuments = documents.contains { !$0.covered }
            if finished && !gainedDocuments {
                return phase == .retrieving ? [.confirmAnalyticsJob(generation: generation), .schedulePoll(.retention)] : [.schedulePoll(.retention)]
            }
            // Reopened: a new document, or one went back to processing.
            var actions: [BookAction] = []
            if phase == .retrieving { actions.append(.supersedeAnalyticsJob(generation: generation)) }
            generation = max(generation, lastOpenedGeneration) + 1
            failureReason = nil
            finishedAt = nil
            // A finish still waiting for its event stays pending across the reopen (a late
            // `book.verified` is that finish's, `noteFinishEvent`); nothing else can be set here.
            for index in documents.indices { documents[index].covered = false }
            if finished { return actions + finishGeneration(at: now) }
            phase = .processing
            return actions + [.schedulePoll(.active)]
        case .deleted:
            return [.schedulePoll(.never)]  // unreachable: a present snapshot left `deleted` above
        }
    }

    /// Every document finished: open the one analytics job of this generation.
    private mutating func finishGeneration(at now: Date) -> [BookAction] {
        if generation <= lastOpenedGeneration { generation = lastOpenedGeneration + 1 }
        lastOpenedGeneration = generation
        phase = .retrieving
        finishedAt = now
        failureReason = nil
        finishEvidence = nil
        for index in documents.indices { documents[index].covered = true }
        return [.openAnalyticsJob(generation: generation), .schedulePoll(.retention)]
    }

    /// Deleted, as two gone answers agreed. The gone doubt is kept, dated by the first answer that
    /// showed the Book gone (a deletion is believed, never known: the slow polls after it,
    /// `PollCadence.afterGone`, are dated from it, and an answer showing the Book clears it).
    private mutating func markGone(firstSeen: Date) -> [BookAction] {
        bookStatus = .deleted
        finishEvidence = nil
        for index in documents.indices { documents[index].hint = nil }
        if doubt?.kind != .gone { doubt = Doubt(kind: .gone, since: firstSeen) }
        guard phase != .deleted else { return [.schedulePoll(.afterGone)] }
        // `finishedAt` stays only when the generation's analytics were retrieved (complete): a
        // revival with the same documents is then that generation still, not a new one.
        if phase != .complete { finishedAt = nil }
        var actions: [BookAction] = []
        if phase == .retrieving { actions.append(.supersedeAnalyticsJob(generation: generation)) }
        phase = .deleted
        return actions + [.schedulePoll(.afterGone)]
    }

    /// Replaces the documents with a snapshot's, keeping each one's `covered` flag; clears hints.
    /// A pk or uuid the new list lacks is kept from the document known before (a body lists uuids
    /// only, hints may name a pk only), so later hints still match.
    /// With `keepingFinishedHints`, a "finished" hint about a document the list still shows in
    /// progress is kept (see `statusLag`).
    private mutating func replaceDocuments(with listed: [DocumentSnapshot], keepingFinishedHints: Bool = false) {
        let previous = documents.filter(\.isConfirmed)
        documents = listed.map { item in
            let before = previous.first { $0.ref.matches(item.ref) }
            let known = before ?? documents.first { $0.ref.matches(item.ref) }
            var ref = item.ref
            if ref.pk == nil { ref.pk = known?.ref.pk }
            if ref.uuid == nil { ref.uuid = known?.ref.uuid }
            let kept = keepingFinishedHints && !item.status.isFinished && known?.hint?.isFinished == true ? known?.hint : nil
            return TrackedDocument(
                ref: ref,
                status: item.status,
                hint: kept,
                covered: before?.covered ?? false,
                rejectionReason: item.rejectionReason
            )
        }
    }

    // MARK: Webhooks: hints

    mutating func applyHint(_ hint: WebhookHint, at now: Date, trusted: Bool) -> [BookAction] {
        lastWebhookAt = now
        // Marked deleted: the mark may have been wrong, so a delivery that proved its origin
        // brings one look (its answer re-confirms the deletion or brings the Book back).
        guard phase != .deleted else { return hint.authenticated ? [.pollNow(.webhookHint)] : [] }
        return noteFinishEvent(hint) + applyHintToState(hint, at: now, trusted: trusted)
    }

    private mutating func applyHintToState(_ hint: WebhookHint, at now: Date, trusted: Bool) -> [BookAction] {
        if trusted, hint.authenticated, phase == .tracking || phase == .processing, let body = hint.finishedBody,
            listsEveryKnownDocument(body), knowsEveryDocument(in: body)
        {
            return finish(fromBody: body, at: now)
        }

        var mentionsNewDocument = false
        if let ref = hint.document, !ref.isEmpty {
            mentionsNewDocument = recordHint(ref: ref, progress: hint.impliedDocumentProgress) || mentionsNewDocument
        }
        // A book-level event's list names documents but announces none of them: a document's own
        // event does that. Letting the list set hints made a lost document event look announced
        // whenever the Book's finished event arrived (the estimate read 30% loss as about 10%).
        for listed in hint.listedDocuments where !listed.ref.isEmpty {
            mentionsNewDocument = recordHint(ref: listed.ref, progress: nil) || mentionsNewDocument
        }

        let namesDocument = hint.document != nil || !hint.listedDocuments.isEmpty
        let allKnownFinished = !documents.isEmpty && documents.allSatisfy { $0.effectiveProgress.isFinished }
        switch phase {
        case .tracking:
            if hint.suggestsBookFinished { return [.pollNow(.webhookHint)] }
            // Trusted: if the Book's finished event is lost after all, a poll soon confirms.
            return trusted && namesDocument && allKnownFinished ? [.pollWithin(.soon)] : [.postponePoll(.active)]
        case .processing:
            if hint.suggestsBookFinished { return [.pollNow(.webhookHint)] }
            let couldBeLast = namesDocument && !confirmedDocuments.isEmpty && allKnownFinished
            guard couldBeLast || (trusted && namesDocument && allKnownFinished) else { return [.postponePoll(.active)] }
            // Trusted, the Book's finished event (whose body finishes it) usually follows at once.
            return trusted ? [.pollWithin(.soon)] : [.pollNow(.webhookHint)]
        case .retrieving:
            var actions: [BookAction] = []
            if hint.event.suggestsAnalyticsReady {
                actions.append(.expediteAnalyticsJob(generation: generation))
            }
            if mentionsNewDocument { actions.append(.pollNow(.webhookHint)) }
            return actions
        case .complete, .failed:
            return mentionsNewDocument ? [.pollNow(.webhookHint)] : []
        case .deleted:
            return []
        }
    }

    /// True when `body` names every document the machine knows of (a body missing one is older
    /// than what the machine has seen, e.g. delivered late across a reopen).
    private func listsEveryKnownDocument(_ body: [DocumentSnapshot]) -> Bool {
        documents.allSatisfy { known in
            known.status == .deleted || body.contains { $0.ref.matches(known.ref) }
        }
    }

    /// True when every document `body` lists was seen before (by a document event or a status
    /// answer): a body about documents the machine never heard of cannot stand in for a status
    /// call, and an empty known set is not "every known document finished".
    private func knowsEveryDocument(in body: [DocumentSnapshot]) -> Bool {
        !documents.isEmpty
            && body.allSatisfy { listed in
                documents.contains { $0.ref.matches(listed.ref) && ($0.isConfirmed || $0.hint != nil) }
            }
    }

    /// A trusted finished body: the documents it lists become the Book's, and the generation
    /// finishes as on a finished snapshot. The last poll time is left alone (no status was read),
    /// and the body is no evidence for the loss estimate: it comes at the moment the last
    /// document's own event does, so an event merely late would count as lost (measured: with 30%
    /// of events held back up to 2 minutes the estimate flapped to lossy and polls rose by a third).
    ///
    /// The Book's finish, though, was announced: that is the book-level evidence
    /// (`.bookFinishCoverage`), which the estimate counts only where no document events arrive.
    private mutating func finish(fromBody body: [DocumentSnapshot], at now: Date) -> [BookAction] {
        bookStatus = .verified
        replaceDocuments(with: body)
        return [.bookFinishCoverage(announced: true)] + advance(finished: true, at: now)
    }

    /// Records a hint for a document; returns true when the document was not known before.
    private mutating func recordHint(ref: DocumentRef, progress: DocumentProgress?) -> Bool {
        if let index = documents.firstIndex(where: { $0.ref.matches(ref) }) {
            // A late "uploaded" never takes back a "verified": hints arrive in any order.
            if let progress, !(documents[index].hint?.isFinished == true && !progress.isFinished) { documents[index].hint = progress }
            return !documents[index].isConfirmed  // only webhooks have named it so far
        }
        // A document only a book-level list named has no hint: it was not announced by its own
        // event, so a body cannot count it as "seen before" (`knowsEveryDocument`).
        documents.append(TrackedDocument(ref: ref, status: nil, hint: progress))
        return true
    }
}
