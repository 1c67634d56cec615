import struct Foundation.Date

/// Whether a book-level event announced a generation's finish (`finishEvidence`): the loss
/// estimate's evidence where a deployment receives no document events. The three moments that
/// decide it live here; `finishGeneration`, a reopen and a deletion clear it.
extension BookMachine {
    /// A webhook: only the Book's own verified event announces a finish
    /// (`WebhookLossEstimate.Kind`), before the answer that shows it, or late within `statusLag`.
    mutating func noteFinishEvent(_ hint: WebhookHint) -> [BookAction] {
        guard hint.event == .bookVerified else { return [] }
        if case .unannounced = finishEvidence {
            // The finish a status answer showed moments ago: announced after all, only late;
            // even when the Book reopened meanwhile, it is that finish's event, not the next's.
            finishEvidence = nil
            return [.bookFinishCoverage(announced: true)]
        }
        if phase == .tracking || phase == .processing { finishEvidence = .announced }
        return []
    }

    /// A status answer showed the generation finished (the generation is now closed): counted at
    /// once when announced, else decided `statusLag` later.
    mutating func noteFinishShown(announced: Bool, at now: Date) -> [BookAction] {
        if announced { return [.bookFinishCoverage(announced: true)] }
        finishEvidence = .unannounced(since: now)
        return []
    }

    /// Any input: a finish shown unannounced longer than `statusLag` ago was not announced.
    mutating func settleFinishEvidence(at now: Date) -> [BookAction] {
        guard case .unannounced(let since) = finishEvidence, now.timeIntervalSince(since) > Self.statusLag else { return [] }
        finishEvidence = nil
        return [.bookFinishCoverage(announced: false)]
    }
}
