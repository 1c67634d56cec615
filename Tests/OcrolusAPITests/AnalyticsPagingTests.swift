import BookWatchCore
import Foundation
import Testing

@testable import OcrolusAPI

/// Reading the end of a paged endpoint from pages whose shape Ocrolus does not document.
@Suite struct AnalyticsPagingTests {
    static func end(_ json: String, offset: Int = 0) -> AnalyticsPageEnd {
        AnalyticsPaging.end(of: Array(json.utf8), offset: offset)
    }

    @Test func thePagesGoOnAfterTheItemsReceivedUntilAnEmptyOne() {
        // A short page is not taken for the last: a server may cap pages below the limit.
        #expect(Self.end(#"{"response":{"enriched_transactions":[1,2]}}"#, offset: 10) == .next(offset: 12))
        #expect(Self.end(#"{"response":{"enriched_transactions":[1,2,3]}}"#) == .next(offset: 3))
        #expect(Self.end(#"{"response":{"enriched_transactions":[]}}"#) == .last)
        // A known name wins over a longer array of something else.
        #expect(Self.end(#"{"response":{"accounts":[1,2,3,4],"transactions":[1]}}"#) == .next(offset: 1))
        // Unknown names: the longest array.
        #expect(Self.end(#"{"response":{"accounts":[1],"rows":[1,2,3]}}"#) == .next(offset: 3))
        // A response that is itself the list; a page without an envelope.
        #expect(Self.end(#"{"response":[1,2,3]}"#) == .next(offset: 3))
        #expect(Self.end(#"[]"#) == .last)
        #expect(Self.end(#"{"txns":[1,2,3]}"#) == .next(offset: 3))
    }

    @Test func whatAPageSaysAboutTheRestWins() {
        #expect(Self.end(#"{"response":{"txns":[1,2,3],"total":3}}"#) == .last)
        #expect(Self.end(#"{"response":{"txns":[1,2,3],"total":7}}"#) == .next(offset: 3))
        #expect(Self.end(#"{"response":{"txns":[1,2,3]},"total":6}"#, offset: 3) == .last)
        #expect(Self.end(#"{"response":{"txns":[1,2,3],"has_more":false}}"#) == .last)
        #expect(Self.end(#"{"response":{"txns":[1],"has_more":true}}"#) == .next(offset: 1))
        #expect(Self.end(#"{"response":{"txns":[1,2,3],"next":null}}"#) == .last)
        #expect(Self.end(#"{"response":{"txns":[1,2,3],"total":true}}"#) == .next(offset: 3))
    }

    @Test func aPageWithoutItemsOrNotJSONIsTheOnlyOne() {
        #expect(Self.end(#"{"response":{"summary":{}}}"#) == .last)
        #expect(Self.end("not json") == .last)
        #expect(Self.end("") == .last)
        // UTF-8 only, without a byte-order mark: such a page could not stand inside the result.
        #expect(AnalyticsPaging.end(of: [0xEF, 0xBB, 0xBF] + Array(#"{"txns":[1]}"#.utf8), offset: 0) == .last)
    }

    @Test func twoPagesWithTheSameItemsCompareEqualWhateverElseTheyCarry() {
        let a = AnalyticsPaging.itemsDigest(Array(#"{"response":{"serial":1,"txns":[{"b":1,"a":2}]}}"#.utf8))
        let b = AnalyticsPaging.itemsDigest(Array(#"{"response":{"serial":2,"txns":[{"a":2,"b":1}]}}"#.utf8))
        let c = AnalyticsPaging.itemsDigest(Array(#"{"response":{"serial":2,"txns":[{"a":3,"b":1}]}}"#.utf8))
        #expect(a != nil && a == b && a != c)
        #expect(AnalyticsPaging.itemsDigest(Array(#"{"response":{"txns":[]}}"#.utf8)) == nil)
    }

    @Test func theResultKeepsEveryPageByteForByte() throws {
        let pages = [#"{"response":{"txns":[{"amount":1234567890.10}]}}"#, #"{"response":{"txns":[]}}"#].map { Array($0.utf8) }
        let body = AnalyticsPaging.assemble(endpoint: "enriched_txns", limit: 1000, pages: pages)
        let text = String(decoding: body, as: UTF8.self)
        #expect(
            text == #"{"endpoint":"enriched_txns","limit":1000,"pages":[{"response":{"txns":[{"amount":1234567890.10}]}},{"response":{"txns":[]}}]}"#
        )
        #expect(try JSONSerialization.jsonObject(with: Data(body)) is [String: Any])
        #expect(AnalyticsPaging.pages(of: body)?.count == 2)
    }

    @Test func aPageThatIsNotJSONIsKeptAsAString() throws {
        let pages = [Array("a \"b\"\n".utf8), [0xEF, 0xBB, 0xBF] + Array("{}".utf8)]
        let body = AnalyticsPaging.assemble(endpoint: "enriched_txns", limit: 10, pages: pages)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        // The byte-order mark's page is a string too (whether the mark survives is the decoder's
        // business): the result stays one valid document.
        let strings = try #require(object["pages"] as? [String])
        #expect(strings.first == "a \"b\"\n" && strings.last?.hasSuffix("{}") == true)
    }

    @Test func onlyThePagedEndpointAsksForAPage() {
        let uuid = BookUUID("09c52985-2f05-4022-a738-9277cc335c7e")!
        let page = AnalyticsPageRequest(offset: 2000, limit: 1000)
        #expect(AnalyticsEndpoint.enrichedTransactions.path(for: uuid, page: page) == "/v2/book/\(uuid)/enriched_txns?offset=2000&limit=1000")
        #expect(AnalyticsEndpoint.summary.path(for: uuid, page: page) == "/v2/book/\(uuid)/summary")
        #expect(AnalyticsEndpoint.allCases.filter(\.isPaged) == [.enrichedTransactions])
    }
}
