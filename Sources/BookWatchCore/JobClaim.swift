import struct Foundation.Date

/// A worker's hold on a running analytics job: its owner and the lease token of this claim.
/// Every write the worker makes for the job checks both in the same statement (a fence).
public struct JobClaim: Sendable, Hashable {
    /// The worker (host, process and a random part: never two alike).
    public var owner: String
    /// The claim's lease token: a new claim of the same job gets a new one.
    public var token: Int64

    /// A claim of `owner` with lease token `token`.
    public init(owner: String, token: Int64) {
        self.owner = owner
        self.token = token
    }
}
