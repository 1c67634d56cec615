import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import OcrolusAPI
import ServiceLifecycle

/// The simulator behind a Hummingbird router: every path goes to `OcrolusSimulation.handle`.
public enum SimulatorServer {
    /// A router serving the simulated API (`/oauth/token`, `/v1/...`, `/v2/...`, `/_sim/stats`).
    public static func router(simulation: OcrolusSimulation, latency: TimeInterval = 0) -> Router<BasicRequestContext> {
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            let outgoing = OutgoingRequest(
                method: request.method.rawValue,
                url: "http://simulator" + request.uri.string,
                headers: request.headers.map { ($0.name.rawName, $0.value) },
                body: Array(body.readableBytesView)
            )
            if latency > 0 { try await Task.sleep(for: .seconds(latency)) }
            let answer = await simulation.handle(outgoing)
            var headers = HTTPFields()
            for (name, value) in answer.headers {
                if let field = HTTPField.Name(name) { headers[field] = value }
            }
            return Response(
                status: HTTPResponse.Status(code: answer.status),
                headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body))
            )
        }
        router.get("**", use: handler)
        router.post("**", use: handler)
        router.delete("**", use: handler)
        return router
    }

    /// An application listening on `host:port`.
    public static func application(
        simulation: OcrolusSimulation,
        host: String,
        port: Int,
        latency: TimeInterval = 0,
        services: [any Service] = [],
        logger: Logger = Logger(label: "ocrolus-sim"),
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(simulation: simulation, latency: latency),
            configuration: .init(address: .hostname(host, port: port), serverName: "ocrolus-simulator"),
            services: services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }
}
