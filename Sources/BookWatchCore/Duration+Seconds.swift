extension Duration {
    /// The duration in seconds, as a `Double` (for metrics, timings and clocks).
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
