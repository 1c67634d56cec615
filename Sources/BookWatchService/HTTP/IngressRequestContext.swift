import Hummingbird
import NIOCore

/// The request context of bookwatch's server: Hummingbird's core plus the peer address, which the
/// webhook allowlist needs.
public struct IngressRequestContext: RequestContext {
    /// Hummingbird's request context.
    public var coreContext: CoreRequestContextStorage
    /// The TCP peer, as text (`127.0.0.1`, `::1`); nil when unknown (in-process router tests).
    public let peerAddress: String?

    /// The context of one request, with the peer's address.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peerAddress = source.channel.remoteAddress?.ipAddress
    }
}
