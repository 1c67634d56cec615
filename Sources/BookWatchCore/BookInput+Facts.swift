import struct Foundation.Date

extension BookInput {
    /// The facts of a status answer or refusal (none for other inputs).
    public var pollAnswer: PollAnswer {
        switch self {
        case .snapshot(_, let answer), .pollRefused(_, let answer): answer
        default: PollAnswer()
        }
    }

    /// A status answer or a refused status call (dated by its question: `pollAnswer.takenAt`).
    public var isStatusAnswer: Bool {
        switch self {
        case .snapshot, .pollRefused: true
        default: false
        }
    }

    /// Where a hint comes from (nothing for other inputs).
    public var hintDelivery: HintDelivery {
        if case .webhook(_, let delivery) = self { return delivery }
        return HintDelivery()
    }

    /// What a worker reports with an analytics outcome (nothing for other inputs).
    public var jobReport: JobReport {
        if case .analytics(_, _, let report) = self { return report }
        return JobReport()
    }

    /// The message of a transient analytics error (what the job's row keeps as its last error).
    public var transientErrorMessage: String? {
        if case .analytics(_, .transientError(let message), _) = self { return message }
        return nil
    }
}
