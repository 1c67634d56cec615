import BookWatchCore
import Foundation

/// The analytics endpoints bookwatch can retrieve (names as used in `BOOKWATCH_ANALYTICS`).
public enum AnalyticsEndpoint: String, Sendable, CaseIterable, Hashable {
    case summary
    case cashFlowFeatures = "cash_flow_features"
    case enrichedTransactions = "enriched_txns"
    case cashFlowRiskScore = "cash_flow_risk_score"
    case income = "income"
    case signals

    /// The path on the API host for a Book.
    public func path(for uuid: BookUUID) -> String {
        switch self {
        case .summary: "/v2/book/\(uuid)/summary"
        case .cashFlowFeatures: "/v2/book/\(uuid)/cash_flow_features"
        case .enrichedTransactions: "/v2/book/\(uuid)/enriched_txns"
        case .cashFlowRiskScore: "/v2/book/\(uuid)/cash_flow_risk_score"
        case .income: "/v2/book/\(uuid)/income/bank-statement-v2"
        case .signals: "/v2/detect/book/\(uuid)/signals"
        }
    }

    /// Whether Ocrolus answers it in pages (`offset`, `limit`): `enriched_txns`.
    public var isPaged: Bool { self == .enrichedTransactions }

    /// The path and query of one page of a paged endpoint (the path alone for the others).
    public func path(for uuid: BookUUID, page: AnalyticsPageRequest?) -> String {
        guard isPaged, let page else { return path(for: uuid) }
        return path(for: uuid) + "?" + page.query
    }

    /// Parses a comma-separated list such as `summary,cash_flow_features`; nil names the bad entry.
    public static func parseList(_ text: String) -> Result<[AnalyticsEndpoint], InvalidEndpoint> {
        var endpoints: [AnalyticsEndpoint] = []
        for part in text.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let endpoint = AnalyticsEndpoint(rawValue: name) else { return .failure(InvalidEndpoint(name: name)) }
            if !endpoints.contains(endpoint) { endpoints.append(endpoint) }
        }
        return endpoints.isEmpty ? .failure(InvalidEndpoint(name: text)) : .success(endpoints)
    }

    /// A name in `BOOKWATCH_ANALYTICS` that is not an analytics endpoint.
    public struct InvalidEndpoint: Error, CustomStringConvertible {
        /// The name given.
        public let name: String
        /// Names it and the endpoints known.
        public var description: String {
            "'\(name)' is not an analytics endpoint (one of \(AnalyticsEndpoint.allCases.map(\.rawValue).joined(separator: ", ")))"
        }
    }
}
