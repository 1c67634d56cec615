import BookWatchClocks
import BookWatchCore
import Foundation
import OcrolusAPI
import OcrolusSimulator

/// A simulation on a manual clock with a client talking to it in-process.
struct SimulatorHarness {
    let clock: ManualClock
    let simulation: OcrolusSimulation
    let client: OcrolusClient

    init(_ configure: (inout SimulationConfig) -> Void = { _ in }) {
        var config = SimulationConfig()
        config.books = 10
        config.seed = 7
        configure(&config)
        clock = ManualClock(start: config.start)
        simulation = OcrolusSimulation(config: config, clock: clock)
        client = OcrolusClient(
            configuration: OcrolusConfiguration(
                apiBaseURL: "http://simulator",
                tokenURL: "http://simulator/oauth/token",
                credentials: .init(clientID: "bookwatch", clientSecret: "sim-secret-0123456789")
            ),
            transport: SimulatorTransport(simulation: simulation),
            limiter: RateLimiter(rate: 1000, burst: 1000, clock: clock),
            clock: clock
        )
    }

    /// Moves the clock to `seconds` after the scenario start.
    func at(_ seconds: Double) { clock.advance(to: simulation.config.start.addingTimeInterval(seconds)) }

    var books: [SimBook] { simulation.scenario.books }
}
