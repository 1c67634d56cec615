import BookWatchCore
import Foundation

/// A Book as `status` shows it.
public struct BookRecord: Sendable {
    /// The Book's machine as stored.
    public var machine: BookMachine
    /// The next poll, if one is scheduled.
    public var nextPollAt: Date?
    /// The reason of a pending urgent poll, if one is requested.
    public var pendingPollReason: PollReason?
    /// The job of the current (or last) generation, if one was opened.
    public var analytics: AnalyticsJobSummary?
    /// The operator's label (`track --label`, `track --from`), if one was given.
    public var label: String? = nil
    /// The Book's name as Ocrolus's status answers give it, once one did.
    public var name: String? = nil

    /// The Book.
    public var uuid: BookUUID { machine.uuid }
    /// Documents an answer confirmed.
    public var documentsTotal: Int { machine.confirmedDocuments.count }
    /// Of those, finished.
    public var documentsFinished: Int { machine.confirmedDocuments.filter { $0.status?.isFinished ?? false }.count }
    /// Of those, failed.
    public var documentsFailed: Int { machine.confirmedDocuments.filter { $0.status?.progress == .failed }.count }
}
