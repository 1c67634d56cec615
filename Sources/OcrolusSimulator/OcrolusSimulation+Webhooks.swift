import BookWatchClocks
import BookWatchCore
import Foundation
import OcrolusAPI

/// One attempt to deliver a webhook, with the headers Ocrolus sends.
public struct WebhookDelivery: Sendable {
    /// The delivery (stable across its retries).
    public let id: Int
    /// `Webhook-Request-Id`: the same for every attempt of one delivery.
    public let requestID: String
    /// The event name in the body.
    public let eventName: String
    /// The Book it is about (index in the scenario).
    public let bookIndex: Int
    /// The body as sent.
    public let body: [UInt8]
    /// 0 for the first attempt, then 1, 2, 3 for the retries.
    public var attempt: Int
    /// When the attempt is due (seconds from the scenario start).
    public var dueAt: Double
    /// Registration it is for (nil: the simulator's configured target).
    public var registrationID: Int?
    /// The headers of the attempt (signature headers when a secret is set).
    public var headers: [(String, String)] = []
}

/// An org-level webhook registered through the management API.
public struct WebhookRegistration: Sendable, Codable {
    /// The webhook id the API answers.
    public var id: Int
    /// Where deliveries go.
    public var url: String
    /// The description given.
    public var description: String
    /// The events subscribed.
    public var eventNames: [String]
    /// The signing secret, if set.
    public var secret: String?
}

extension OcrolusSimulation {
    /// Turns scenario events whose time has come into deliveries (drop, duplicate and delay
    /// faults applied), then returns the deliveries due now with their headers, signed when a
    /// secret is configured. Each returned attempt must be answered with `recordAnswer`.
    public func takeDueDeliveries() -> [WebhookDelivery] {
        // A microsecond of slack: `nextWebhookDueAt` round-trips through `Date`, which rounds.
        let now = t + 1e-6
        while nextEvent < pendingEvents.count, pendingEvents[nextEvent].at <= now {
            enqueue(pendingEvents[nextEvent])
            nextEvent += 1
        }
        var due: [WebhookDelivery] = []
        while let first = deliveries.first, first.dueAt <= now {
            var delivery = deliveries.removeFirst()
            delivery.headers = headers(for: delivery)
            counters.deliveryAttempts += 1
            due.append(delivery)
        }
        return due
    }

    /// Records the receiver's answer (nil: no answer in time); schedules a retry unless it was 200.
    public func recordAnswer(_ delivery: WebhookDelivery, status: Int?) {
        counters.deliveryAnswers[String(status ?? 0), default: 0] += 1
        if let registration = delivery.registrationID {
            var log = deliveryLog[registration, default: []]
            log.append([
                "request_id": delivery.requestID, "event_name": delivery.eventName, "http_status": status ?? 0,
                "attempt": delivery.attempt, "sent_at": BookStatusStamp.rfc3339(clock.now()),
            ])
            deliveryLog[registration] = Array(log.suffix(Self.deliveryLogLimit))
        }
        guard status != 200 else {
            counters.acceptedRequestIDs.append(delivery.requestID)
            return
        }
        guard delivery.attempt < config.webhookRetryDelays.count else {
            counters.deliveriesAbandoned += 1
            return
        }
        var retry = delivery
        retry.dueAt = t + config.webhookRetryDelays[delivery.attempt]
        retry.attempt += 1
        insert(retry)
    }

    /// The next time anything webhook-related is due, if anything is left.
    public func nextWebhookDueAt() -> Date? {
        let eventAt = nextEvent < pendingEvents.count ? pendingEvents[nextEvent].at : nil
        let deliveryAt = deliveries.first?.dueAt
        return [eventAt, deliveryAt].compactMap { $0 }.min().map(date)
    }

    /// Whether every webhook has been delivered, dropped or abandoned.
    public var webhooksExhausted: Bool { nextEvent >= pendingEvents.count && deliveries.isEmpty }

    /// URLs registered through the management API (the sender posts to these too).
    public func registeredWebhooks() -> [WebhookRegistration] {
        registrations.values.sorted { $0.id < $1.id }
    }

    private func enqueue(_ event: SimEvent) {
        counters.webhooksGenerated += 1
        // Webhooks registered through the management API get the events they subscribe (exact
        // names, as Ocrolus matches them), with retries but without the drop, duplicate and delay
        // faults, which stand for the configured target's network.
        for registration in registeredWebhooks() where registration.eventNames.contains(event.name) {
            queueFirstAttempt(of: event, dueAt: event.at, registrationID: registration.id)
        }
        guard config.webhooksEnabled, config.subscribedEvents?.contains(event.name) ?? true else { return }
        if rng.chance(faults.webhookDrop) && event.at >= faults.webhookDropFrom {
            counters.webhooksDroppedByFault += 1
            return
        }
        var copies = 1
        if rng.chance(faults.webhookDuplicate) {
            counters.webhooksDuplicated += 1
            copies = 2
        }
        for _ in 0..<copies {
            var dueAt = event.at
            if rng.chance(faults.webhookDelay) {
                counters.webhooksDelayed += 1
                dueAt += rng.uniform(1...max(faults.maxWebhookDelay, 1))
            }
            queueFirstAttempt(of: event, dueAt: dueAt, registrationID: nil)
        }
    }

    /// A new delivery of `event` (its own request id), first attempt due at `dueAt`.
    private func queueFirstAttempt(of event: SimEvent, dueAt: Double, registrationID: Int?) {
        nextDeliveryID += 1
        insert(
            WebhookDelivery(
                id: nextDeliveryID,
                requestID: rng.uuid(),
                eventName: event.name,
                bookIndex: event.bookIndex,
                body: event.body,
                attempt: 0,
                dueAt: dueAt,
                registrationID: registrationID
            )
        )
    }

    private func insert(_ delivery: WebhookDelivery) {
        // Binary search keeps `deliveries` sorted by due time, FIFO among equals.
        var low = 0
        var high = deliveries.count
        while low < high {
            let mid = (low + high) / 2
            if deliveries[mid].dueAt <= delivery.dueAt { low = mid + 1 } else { high = mid }
        }
        deliveries.insert(delivery, at: low)
    }

    private func headers(for delivery: WebhookDelivery) -> [(String, String)] {
        var headers = [("Content-Type", "application/json"), ("User-Agent", "Ocrolus-Webhooks/sim")]
        let secret = delivery.registrationID.flatMap { registrations[$0]?.secret } ?? config.webhookSecret
        headers.append(("Webhook-Request-Id", delivery.requestID))
        if let secret {
            let timestamp = String(Int(timestampClock.now().timeIntervalSince1970))
            headers.append(("Webhook-Timestamp", timestamp))
            headers.append(
                (
                    "Webhook-Signature",
                    WebhookVerifier.sign(
                        body: delivery.body,
                        timestamp: timestamp,
                        requestID: delivery.requestID,
                        secret: secret
                    )
                )
            )
        }
        return headers
    }

    // MARK: management API (org level)

    func webhookManagement(_ request: OutgoingRequest, path: String) -> IncomingResponse {
        let parts = path.dropFirst("/v1/account/settings/".count).split(separator: "/").map(String.init)
        let body = (request.body.flatMap { try? JSONSerialization.jsonObject(with: Data($0)) } as? [String: Any]) ?? [:]
        switch (request.method, parts.count) {
        case ("GET", 1) where parts[0] == "webhooks":
            return Self.json(200, ["status": 200, "message": "OK", "response": registeredWebhooks().map(Self.describe)])
        case ("POST", 1) where parts[0] == "webhook":
            guard let webhook = body["webhook"] as? [String: Any], let url = webhook["url"] as? String,
                let scheme = URL(string: url)?.scheme?.lowercased(), ["http", "https"].contains(scheme), URL(string: url)?.host != nil
            else {
                return Self.json(400, ["status": 400, "code": 1002, "message": "webhook.url must be an http(s) URL"])
            }
            guard registrations.count < Self.registrationLimit else {
                return Self.json(
                    400,
                    ["status": 400, "code": 1002, "message": "an organisation may have at most \(Self.registrationLimit) webhooks"]
                )
            }
            if !config.webhooksEnabled && registrations.isEmpty && nextEvent == 0 && pendingEvents.isEmpty {
                // Without a configured target no events were queued: from now on they are, for the registrations.
                pendingEvents = scenario.events().filter { $0.at > t }
            }
            let registration = WebhookRegistration(
                id: nextRegistrationID,
                url: url,
                description: webhook["description"] as? String ?? "",
                eventNames: body["event_names"] as? [String] ?? [],
                secret: nil
            )
            registrations[registration.id] = registration
            nextRegistrationID += 1
            return Self.json(200, ["status": 200, "message": "OK", "response": Self.describe(registration)])
        case (_, 2...3) where parts[0] == "webhook":
            guard let id = Int(parts[1]), var registration = registrations[id] else {
                return Self.json(404, ["status": 404, "message": "webhook not found"])
            }
            let action = parts.count == 3 ? parts[2] : ""
            switch (request.method, action) {
            case ("GET", ""):
                return Self.json(200, ["status": 200, "message": "OK", "response": Self.describe(registration)])
            case ("GET", "events"):
                return Self.json(200, ["status": 200, "message": "OK", "response": deliveryLog[id] ?? []])
            case ("POST", "update"):
                if let webhook = body["webhook"] as? [String: Any] {
                    registration.url = webhook["url"] as? String ?? registration.url
                    registration.description = webhook["description"] as? String ?? registration.description
                }
                registration.eventNames = body["event_names"] as? [String] ?? registration.eventNames
                registrations[id] = registration
                return Self.json(200, ["status": 200, "message": "OK", "response": Self.describe(registration)])
            case ("DELETE", "delete"):
                registrations[id] = nil
                deliveryLog[id] = nil
                return Self.json(200, ["status": 200, "message": "OK", "response": NSNull()])
            case ("POST", "rotate-secret"):
                guard let secret = body["secret_key"] as? String, (16...128).contains(secret.count) else {
                    return Self.json(400, ["status": 400, "message": "secret_key must be 16 to 128 characters"])
                }
                registration.secret = secret
                registrations[id] = registration
                return Self.json(200, ["status": 200, "message": "OK", "response": Self.describe(registration)])
            case ("POST", "test"):
                nextDeliveryID += 1
                let testBody = Array(#"{"status": "VERIFICATION_COMPLETE", "uploaded_doc_pk": 0, "book_pk": 0}"#.utf8)
                insert(
                    WebhookDelivery(
                        id: nextDeliveryID,
                        requestID: rng.uuid(),
                        eventName: "test",
                        bookIndex: -1,
                        body: testBody,
                        attempt: 0,
                        dueAt: t,
                        registrationID: id
                    )
                )
                return Self.json(200, ["status": 200, "message": "OK", "response": NSNull()])
            default:
                return Self.json(405, ["status": 405, "message": "method not allowed"])
            }
        default:
            return Self.json(404, ["status": 404, "message": "no such endpoint: \(path)"])
        }
    }

    static func describe(_ registration: WebhookRegistration) -> [String: Any] {
        [
            "id": registration.id, "url": registration.url, "description": registration.description,
            "event_names": registration.eventNames, "has_secret": registration.secret != nil,
        ]
    }
}
