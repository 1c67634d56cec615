import BookWatchClocks
import BookWatchCore
import Foundation
import OcrolusAPI

extension OcrolusSimulation {
    /// Answers one API request, and how long the answer takes to leave (`faults.answerDelay`):
    /// the view is the one at arrival, whatever happens to the Book before the answer is read.
    public func handleDelayed(_ request: OutgoingRequest) -> (IncomingResponse, TimeInterval) {
        let response = handle(request)
        guard faults.answerDelay > 0 else { return (response, 0) }
        if faults.answerDelayStatusOnly, !request.url.contains("/v1/book/status") { return (response, 0) }
        return (response, faults.answerDelay * Double(rng.next() % 1_000_001) / 1_000_000)
    }

    /// Answers one API request as Ocrolus would, faults included.
    public func handle(_ request: OutgoingRequest) -> IncomingResponse {
        guard let components = URLComponents(string: request.url) else { return Self.json(400, ["message": "bad url"]) }
        let path = components.path
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }) { first, _ in first }
        if path == "/_sim/stats" { return statsResponse() }
        if path.hasSuffix("/oauth/token") && request.method == "POST" { return issueToken(request.body ?? []) }

        guard authorized(request) else {
            counters.answers401 += 1
            return Self.json(401, ["status": 401, "message": "Unauthorized"])
        }
        if let limited = rateLimited() { return limited }
        if let fault = injectedFault() { return fault }

        if path == "/v1/book/status" && request.method == "GET" { return bookStatus(query) }
        if path.hasPrefix("/v1/account/settings/") { return webhookManagement(request, path: path) }
        if request.method == "GET", let (book, endpoint) = analyticsTarget(path) { return analytics(book, endpoint, query: query) }
        return Self.json(404, ["status": 404, "message": "no such endpoint: \(path)"])
    }

    func statsResponse() -> IncomingResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let body = (try? encoder.encode(stats())) ?? Data()
        return IncomingResponse(status: 200, headers: [("Content-Type", "application/json")], body: Array(body))
    }

    // MARK: auth

    func issueToken(_ body: [UInt8]) -> IncomingResponse {
        var fields: [String: String] = [:]
        if let json = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] {
            for (key, value) in json { fields[key] = "\(value)" }
        } else if let form = String(bytes: body, encoding: .utf8) {
            for pair in form.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                if parts.count == 2 { fields[parts[0]] = parts[1] }
            }
        }
        guard fields["grant_type"] == "client_credentials" else {
            return Self.json(400, ["error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"])
        }
        if let expected = config.clientID, fields["client_id"] != expected || fields["client_secret"] != config.clientSecret {
            return Self.json(401, ["error": "invalid_client", "error_description": "Unknown client or wrong secret"])
        }
        issuedTokens += 1
        counters.tokensIssued += 1
        let token = "sim-token-\(issuedTokens)-\(rng.next() % 1_000_000)"
        tokens[token] = clock.now().addingTimeInterval(config.tokenLifetime)
        return Self.json(200, ["access_token": token, "token_type": "Bearer", "expires_in": Int(config.tokenLifetime)])
    }

    func authorized(_ request: OutgoingRequest) -> Bool {
        guard let header = request.header("Authorization"), header.hasPrefix("Bearer ") else { return false }
        guard let expiry = tokens[String(header.dropFirst("Bearer ".count))] else { return false }
        return clock.now() < expiry
    }

    // MARK: faults

    /// The enforced organisation-wide limit (GCRA, like the client's own limiter, to the
    /// microsecond), on the clients' clock (`timestampClock`: real time when `simulate` runs a
    /// scenario faster than real time, the scenario's clock in process).
    func rateLimited() -> IncomingResponse? {
        guard let rate = faults.rateLimit, rate > 0 else {
            counters.requestsAdmitted += 1
            return nil
        }
        let now = timestampClock.now().timeIntervalSince(config.start)
        let interval = 1 / rate
        let earliest = rateTAT - (faults.rateBurst - 1) * interval
        if now + 1e-6 < earliest {
            counters.answers429 += 1
            counters.answersRateLimited += 1
            let wait = Int((earliest - now).rounded(.up))
            return Self.json(429, ["status": 429, "message": "Too Many Requests"], headers: [("Retry-After", "\(max(wait, 1))")])
        }
        rateTAT = max(rateTAT, now) + interval
        counters.requestsAdmitted += 1
        return nil
    }

    func injectedFault() -> IncomingResponse? {
        if rng.chance(faults.api429) {
            counters.answers429 += 1
            var headers: [(String, String)] = []
            if rng.chance(faults.retryAfterFraction) {
                let seconds = 1 + Int(rng.next() % 5)
                headers.append(
                    ("Retry-After", rng.chance(0.5) ? "\(seconds)" : RetryAfter.httpDate(timestampClock.now().addingTimeInterval(Double(seconds))))
                )
            }
            return Self.json(429, ["status": 429, "message": "Too Many Requests"], headers: headers)
        }
        if rng.chance(faults.api5xx) {
            counters.answers5xx += 1
            let status = [500, 502, 503, 504][Int(rng.next() % 4)]
            return IncomingResponse(status: status, headers: [("Content-Type", "text/html")], body: Array("<html>upstream error</html>".utf8))
        }
        if rng.chance(faults.bareNotFound) {
            counters.answersBare404 += 1
            return IncomingResponse(status: 404, headers: [("Content-Type", "text/html")], body: Array("<html><h1>404 Not Found</h1></html>".utf8))
        }
        return nil
    }

    // MARK: book status

    func bookStatus(_ query: [String: String]) -> IncomingResponse {
        var index: Int?
        if let text = query["book_uuid"] ?? query["uuid"] {
            index = BookUUID(text).flatMap { booksByUUID[$0] }
        } else if let text = query["pk"], let pk = Int(text) {
            index = booksByPK[pk]
        } else {
            return Self.json(400, ["status": 400, "code": 1103, "message": "Missing pk or book_uuid", "response": NSNull()])
        }
        let now = t
        // Every Book exists from the start (CREATED until its first document arrives).
        guard let index else { return bookNotFound(httpStatus: 404) }
        let book = scenario.books[index]
        counters.statusCalls += 1
        counters.statusCallsByBook[book.uuid.rawValue, default: 0] += 1
        if book.isDeleted(at: now) && !book.deletedAnswersWithStatus {
            // Observed variants: 400, 404, or an error inside an HTTP 200.
            return bookNotFound(httpStatus: [400, 404, 200][book.index % 3])
        }
        let bookStatus = book.bookStatus(at: now)
        if let refusal = faults.statusRefused, refusal.book == book.index, (refusal.from..<refusal.until).contains(now) {
            return Self.json(403, ["status": 403, "code": 2102, "message": "You do not have permission to access this book", "response": NSNull()])
        }
        if bookStatus == .verified {
            counters.statusCallsWhileFinished += 1
            if counters.firstSeenFinished[book.uuid.rawValue] == nil {
                counters.firstSeenFinished[book.uuid.rawValue] = BookStatusStamp.rfc3339(date(now))
            }
        }
        var statusWord = bookStatus == .verified && book.saysBookComplete ? "BOOK_COMPLETE" : bookStatus.rawValue
        if bookStatus == .verifying, faults.earlyVerified > 0, rng.chance(faults.earlyVerified) { statusWord = "VERIFIED" }
        let docs: [[String: Any]] = book.documentStatuses(at: now).map { document, status in
            var item: [String: Any] = [
                "pk": document.pk, "uuid": document.uuid, "name": document.name, "pages": 5, "status": status.rawValue,
                "mixed_uploaded_doc_pk": NSNull(), "rejection_reason": NSNull(),
            ]
            if status == .rejected { item["rejection_reason"] = "INVALID DOCUMENT" }
            return item
        }
        return Self.json(
            200,
            [
                "status": 200, "message": "OK",
                "response": [
                    "pk": book.pk, "id": book.pk, "uuid": book.uuid.rawValue, "name": book.name,
                    "book_status": statusWord, "docs": docs, "mixed_docs": [Any](),
                ] as [String: Any],
            ]
        )
    }

    func bookNotFound(httpStatus: Int) -> IncomingResponse {
        Self.json(httpStatus, ["status": 400, "code": 1401, "message": "Book not found", "response": NSNull()])
    }

    // MARK: analytics

    func analyticsTarget(_ path: String) -> (SimBook, AnalyticsEndpoint)? {
        for endpoint in AnalyticsEndpoint.allCases {
            let template = endpoint.path(for: BookUUID("00000000-0000-4000-8000-000000000000")!)  // a constant, well-formed uuid
            let parts = template.components(separatedBy: "00000000-0000-4000-8000-000000000000")
            guard parts.count == 2, path.hasPrefix(parts[0]), path.hasSuffix(parts[1]) else { continue }
            let middle = path.dropFirst(parts[0].count).dropLast(parts[1].count)
            guard let uuid = BookUUID(middle), let index = booksByUUID[uuid] else { return nil }
            return (scenario.books[index], endpoint)
        }
        return nil
    }

    func analytics(_ book: SimBook, _ endpoint: AnalyticsEndpoint, query: [String: String] = [:]) -> IncomingResponse {
        let now = t
        if book.isDeleted(at: now) { return bookNotFound(httpStatus: 404) }
        guard book.analyticsReady(at: now) else {
            counters.analyticsNotReady += 1
            return Self.json(425, ["status": 425, "code": 9004, "message": "Analytics are still being processed, please check back momentarily"])
        }
        let generation = book.generation(at: now)
        counters.analyticsOK += 1
        // A paged endpoint counts each page apart: exactly once per page.
        let page =
            endpoint.isPaged
            ? AnalyticsPageRequest(offset: max(0, Int(query["offset"] ?? "") ?? 0), limit: max(1, Int(query["limit"] ?? "") ?? 1000)) : nil
        let key = "\(book.uuid):\(generation):\(endpoint.rawValue)" + (page.map { "@\($0.offset)" } ?? "")
        counters.analyticsOKByKey[key, default: 0] += 1
        counters.analyticsOKTimes[key, default: []].append(BookStatusStamp.rfc3339(date(now)))
        counters.analyticsOKSerials[key, default: []].append(counters.analyticsOK)
        let documents = book.documentStatuses(at: now).count
        var response: [String: Any] = [
            "book_uuid": book.uuid.rawValue, "book_pk": book.pk, "endpoint": endpoint.rawValue, "generation": generation,
            // Which 200 this is (1, 2, ...): a test reading the stored body knows which answer was kept.
            "serial": counters.analyticsOK,
            "documents": documents,
        ]
        if let page {
            let total = documents * config.transactionsPerDocument
            let range = min(page.offset, total)..<min(page.offset + page.limit, total)
            response["offset"] = page.offset
            response["limit"] = page.limit
            response["enriched_transactions"] = range.map { index in
                ["txn_pk": index, "generation": generation, "amount": "\(index % 997).\(index % 10)5"] as [String: Any]
            }
        }
        return Self.json(200, ["status": 200, "message": "OK", "response": response])
    }

    static func json(_ status: Int, _ object: [String: Any], headers: [(String, String)] = []) -> IncomingResponse {
        let body =
            SimulatorJSON.encode(object)
            ?? Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data())
        return IncomingResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: body)
    }
}
