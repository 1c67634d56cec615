import BookWatchCore
import BookWatchSQLite
import BookWatchService
import BookWatchStore
import BookWatchTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import OcrolusAPI
import ServiceLifecycle
import Synchronization
import Testing

@Suite struct IngressDurabilityTests {
    let body = IngressHarness.documentEvent

    @Test func aThousandConcurrentDeliveriesAreStoredExactlyOnceInSharedTransactions() async throws {
        let h = try IngressHarness()
        try await h.application().test(.router) { client in
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<1000 {
                    let headers = h.signedHeaders(body, requestID: "req-\(index % 1000)")
                    group.addTask {
                        try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: headers, body: ByteBuffer(string: body)).status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == .ok })
        }
        let stored = try await h.store.pendingInbox(limit: 2000)
        #expect(stored.count == 1000)
        #expect(Set(stored.compactMap(\.delivery.requestID)).count == 1000)
        let batches = h.writer.batches.load(ordering: .relaxed)
        #expect(batches < 1000)
        print("ingress: 1000 concurrent deliveries stored in \(batches) transactions")
    }

    @Test func concurrentDuplicatesOfOneRequestIDStoreOneRow() async throws {
        let h = try IngressHarness()
        let headers = h.signedHeaders(body, requestID: "same-id")
        try await h.application().test(.router) { client in
            let answers = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: headers, body: ByteBuffer(string: body)).json[
                            "status"
                        ] ?? ""
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(answers.filter { $0 == "accepted" }.count == 1)
            #expect(answers.filter { $0 == "duplicate" }.count == 49)
        }
        #expect(try await h.store.inboxCount() == 1)
    }

    /// Delivers "before", breaks the database, expects 503 and readiness false for "during",
    /// repairs it, expects the probe to restore readiness and Ocrolus's retry of "during" to be stored.
    func unwritableScenario(
        _ h: IngressHarness,
        break breakIt: @escaping @Sendable () throws -> Void,
        repair: @escaping @Sendable () throws -> Void
    ) async throws {
        let probe = DatabaseProbe(store: h.store, health: h.health, clock: h.clock, logger: Logger(label: "test"))
        try await h.application().test(.router) { client in
            let first = try await h.deliver(body, requestID: "before", through: client)
            #expect(first.status == .ok)
            try breakIt()
            let refused = try await h.deliver(body, requestID: "during", through: client)
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.headers[.retryAfter] == "5")
            let ready = try await client.execute(uri: "/readyz", method: .get)
            #expect(ready.status == .serviceUnavailable)
            #expect(ready.json["database"] == "unwritable")
            await probe.probe()
            #expect(!h.health.isReady)
            try repair()
            await probe.probe()
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok)
            let retried = try await h.deliver(body, requestID: "during", through: client)
            #expect(retried.status == .ok)
        }
        let ids = try await h.store.pendingInbox(limit: 10).compactMap(\.delivery.requestID)
        #expect(ids == ["before", "during"])
    }

    @Test func aReadOnlyDatabaseAnswers503AndLosesNothingThenRecovers() async throws {
        let h = try IngressHarness()
        try await unwritableScenario(h, break: { try h.store.setWriterQueryOnly(true) }, repair: { try h.store.setWriterQueryOnly(false) })
    }

    @Test func aFullDiskAnswers503AndLosesNothingThenRecovers() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-full-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try #require(
            Shell.run("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", base]),
            "needs root to mount a small tmpfs (CI and this sandbox run as root)"
        )
        defer { _ = Shell.run("/bin/umount", ["-l", base]) }
        let h = try IngressHarness(directory: base)
        let filler = base + "/filler"
        try await unwritableScenario(
            h,
            break: {
                _ = Shell.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k", "count=1000"])  // fills the 4 MiB disk
            },
            repair: { try FileManager.default.removeItem(atPath: filler) }
        )
        try h.store.close()
    }

    @Test func liveSocketAllowlistAndTrustedProxies() async throws {
        let allowOnlyProxied = WebhookAccessPolicy(allow: [CIDR("18.205.30.63")!], trustedProxies: [CIDR("127.0.0.0/8")!])
        let h = try IngressHarness(access: allowOnlyProxied)
        try await h.application().test(.live) { client in
            // Straight from 127.0.0.1: a trusted proxy, but without X-Forwarded-For the client is the proxy itself.
            let direct = try await client.execute(
                uri: "/webhooks/ocrolus",
                method: .post,
                headers: h.signedHeaders(body),
                body: ByteBuffer(string: body)
            )
            #expect(direct.status == .forbidden)
            var forwarded = h.signedHeaders(body)
            forwarded[HTTPField.Name("X-Forwarded-For")!] = "203.0.113.9, 18.205.30.63"
            let viaProxy = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: forwarded, body: ByteBuffer(string: body))
            #expect(viaProxy.status == .ok)
            forwarded = h.signedHeaders(body)
            forwarded[HTTPField.Name("X-Forwarded-For")!] = "18.205.30.63, 203.0.113.9"
            let spoofed = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: forwarded, body: ByteBuffer(string: body))
            #expect(spoofed.status == .forbidden)
        }
        let untrusting = try IngressHarness(access: WebhookAccessPolicy(allow: [CIDR("18.205.30.63")!]))
        try await untrusting.application().test(.live) { client in
            var forwarded = untrusting.signedHeaders(body)
            forwarded[HTTPField.Name("X-Forwarded-For")!] = "18.205.30.63"
            let status = try await client.execute(uri: "/webhooks/ocrolus", method: .post, headers: forwarded, body: ByteBuffer(string: body)).status
            #expect(status == .forbidden)
        }
        let open = try IngressHarness(access: WebhookAccessPolicy(allow: [CIDR("::1")!, CIDR("127.0.0.1/32")!]))
        try await open.application().test(.live) { client in
            let status = try await client.execute(
                uri: "/webhooks/ocrolus",
                method: .post,
                headers: open.signedHeaders(body),
                body: ByteBuffer(string: body)
            ).status
            #expect(status == .ok)
        }
    }

    @Test func gracefulShutdownWhileDeliveriesAreInFlightLosesNoneThatGot200() async throws {
        let h = try IngressHarness()
        let accepted = Box<[String]>([])
        let sendersDone = Box(false)
        let port = Box<Int?>(nil)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let app = Application(
            router: BookWatchRoutes.router(ingress: h.ingress, store: h.store, health: h.health),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            services: [h.writer],
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let bindBy = ContinuousClock.now + .seconds(60)
            while port.withLock({ $0 }) == nil {
                try #require(ContinuousClock.now < bindBy, "the server never bound its port")
                try await Task.sleep(for: .milliseconds(5))
            }
            let url = "http://127.0.0.1:\(port.withLock { $0 } ?? 0)/webhooks/ocrolus"
            let body = self.body
            tasks.addTask {
                await withTaskGroup(of: Void.self) { senders in
                    for index in 0..<400 {
                        let headers = h.signedHeaders(body, requestID: "r-\(index)")
                        senders.addTask {
                            let request = OutgoingRequest(
                                method: "POST",
                                url: url,
                                headers: headers.map { ($0.name.rawName, $0.value) },
                                body: Array(body.utf8),
                                timeout: 10
                            )
                            if let response = try? await AsyncHTTPClientTransport().send(request), response.status == 200 {
                                accepted.withLock { $0.append("r-\(index)") }
                            }
                        }
                    }
                }
                sendersDone.withLock { $0 = true }
            }
            // Shut down once 50 got their 200, or when every sender is done (on a loaded machine
            // answers can time out: the count is then checked below, never waited for in a loop
            // that could not end; this loop hung a full run twice).
            while accepted.withLock({ $0.count }) < 50, !sendersDone.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(1)) }
            // The point is a shutdown with deliveries in flight: not vacuously after the last one.
            #expect(!sendersDone.withLock { $0 }, "every sender finished before the shutdown began")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let stored = Set(try await h.store.pendingInbox(limit: 1000).compactMap(\.delivery.requestID))
        let got200 = accepted.withLock { $0 }
        #expect(got200.count >= 50)
        #expect(Set(got200).isSubset(of: stored))
        print("graceful shutdown: \(got200.count) deliveries answered 200, \(stored.count) stored")
    }
}

/// A locked value shared with concurrent closures in tests.
final class Box<Value: Sendable>: Sendable {
    private let state: Mutex<Value>
    init(_ value: Value) { state = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { state.withLock { body(&$0) } }
}

@Suite struct LyingContentLengthTests {
    /// Sends raw bytes on a fresh TCP connection and returns what comes back before the peer
    /// closes or `seconds` pass.
    func raw(_ text: String, port: Int, closeAfterWrite: Bool, seconds: Int = 3) async -> String {
        await exchange(text, port: port, closeAfterWrite: closeAfterWrite, seconds: seconds).answer
    }

    /// `raw`, also saying whether the server closed the connection before `seconds` passed
    /// (a read of zero bytes or a reset, not a read timing out), after sending `trickle` more
    /// bytes one every 100 ms (stopping when a send fails: the server closed) and how many of
    /// those were sent. The blocking socket calls run on a dispatch thread: on the cooperative
    /// pool (two threads here) two tests waiting at once would leave the server's handlers no
    /// thread to answer on.
    func exchange(
        _ text: String,
        port: Int,
        closeAfterWrite: Bool,
        seconds: Int,
        trickle: Int = 0
    ) async -> (answer: String, closedByServer: Bool, trickled: Int) {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(
                    returning: Self.blockingExchange(text, port: port, closeAfterWrite: closeAfterWrite, seconds: seconds, trickle: trickle)
                )
            }
        }
    }

    static func blockingExchange(
        _ text: String,
        port: Int,
        closeAfterWrite: Bool,
        seconds: Int,
        trickle: Int
    ) -> (answer: String, closedByServer: Bool, trickled: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return ("", false, 0) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return ("", false, 0) }
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let noSignal = Int32(MSG_NOSIGNAL)
        _ = text.withCString { send(fd, $0, strlen($0), noSignal) }
        var trickled = 0
        while trickled < trickle {
            usleep(100_000)
            var byte: UInt8 = 0x20
            guard send(fd, &byte, 1, noSignal) == 1 else { break }
            trickled += 1
        }
        if closeAfterWrite { shutdown(fd, Int32(SHUT_WR)) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        let reset = count < 0 && (errno == ECONNRESET || errno == EPIPE)
        return (count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : "", count == 0 || reset, trickled)
    }

    /// A sender that stops in the middle of its headers is cut off by the idle timeout (2 s
    /// here); one that trickles its body a byte every 100 ms, which restarts that timer each
    /// time, by the request deadline (1 s here) long before its 100 bytes are out; a guard of
    /// 30 s tells a close from a read timing out. The server goes on answering.
    @Test func aSenderThatStallsMidRequestIsCutOff() async throws {
        let h = try IngressHarness(secrets: [])
        try await h.application(idleTimeout: .seconds(2), requestDeadline: .seconds(1)).test(.live) { client in
            let port = try #require(client.port)
            let headers = await exchange("POST /webhooks/ocrolus HTTP/1.1\r\nHost: x\r\n", port: port, closeAfterWrite: false, seconds: 30)
            #expect(headers.closedByServer && headers.answer.isEmpty)
            let body = await exchange(
                "POST /webhooks/ocrolus HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"book_pk\":1",
                port: port,
                closeAfterWrite: false,
                seconds: 30,
                trickle: 100
            )
            #expect(body.closedByServer && body.answer.isEmpty)
            #expect(body.trickled < 50, "cut off while still trickling: \(body.trickled) bytes")
            // Refused at once (over the body limit), then its body drained by Hummingbird: the
            // deadline ends the drain too.
            let refused = await exchange(
                "POST /webhooks/ocrolus HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n{",
                port: port,
                closeAfterWrite: false,
                seconds: 30,
                trickle: 100
            )
            #expect(refused.answer.hasPrefix("HTTP/1.1 413"))
            #expect(refused.trickled < 50, "the drain cut off: \(refused.trickled) bytes")
            // A whole request on a fresh connection is answered (the test client's own keep-alive
            // connection has been idle longer than the timeout by now, and was closed too).
            let ok = await exchange(
                "POST /webhooks/ocrolus HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"book_pk\":1}",
                port: port,
                closeAfterWrite: false,
                seconds: 30
            )
            #expect(ok.answer.hasPrefix("HTTP/1.1 200"))
        }
        #expect(try await h.store.inboxCount() == 1)
    }

    @Test func aLyingContentLengthNeitherHangsNorCrashesTheServer() async throws {
        let h = try IngressHarness(secrets: [], bodyLimit: 1024)
        try await h.application().test(.live) { client in
            let port = try #require(client.port)
            // Declares far more than the limit: refused before any body is read. (The answer is
            // immediate; 30 s only bounds a hang: a clean-clone CI run, every suite at once on 2
            // cores, once got nothing within 3 s.)
            let huge = await raw(
                "POST /webhooks/ocrolus HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n{}",
                port: port,
                closeAfterWrite: false,
                seconds: 30
            )
            #expect(huge.hasPrefix("HTTP/1.1 413"))
            // Declares more than it sends, then the client goes away: the request ends, nothing is stored.
            _ = await raw(
                "POST /webhooks/ocrolus HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"book_pk\":1",
                port: port,
                closeAfterWrite: true
            )
            // Declares less than it sends: the extra bytes are a malformed next request, not a crash.
            _ = await raw("POST /webhooks/ocrolus HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n{\"book_pk\":1}", port: port, closeAfterWrite: true)
            // The server still answers normally.
            let body = #"{"book_pk":1}"#
            let ok = try await client.execute(
                uri: "/webhooks/ocrolus",
                method: .post,
                headers: [.contentType: "application/json"],
                body: ByteBuffer(string: body)
            )
            #expect(ok.status == .ok)
        }
        #expect(try await h.store.inboxCount() == 1)
    }
}
