import CoreMetrics
import Prometheus

/// The swift-metrics backend `serve` bootstraps: Hummingbird's `MetricsMiddleware` (and any other
/// library using swift-metrics) records into the same registry as `BookWatchMetrics`, under
/// `bookwatch_http_*` names with help text and Prometheus-style label names, so that
/// `promtool check metrics` has nothing to say.
public struct HTTPMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry

    /// A factory recording into `registry`.
    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// Hummingbird's labels, renamed; anything else becomes `bookwatch_<label>` with its dots as
    /// underscores (and `_total` on counters).
    static let known: [String: (name: String, help: String)] = [
        "hb.requests": ("bookwatch_http_requests_total", "HTTP requests answered, by route, method and status code."),
        "hb.request.errors": ("bookwatch_http_request_errors_total", "HTTP requests that ended in an error, by route, method and error type."),
        "http.server.request.duration": ("bookwatch_http_request_duration_seconds", "HTTP request duration, by route, method and status code."),
        "http.server.active_requests": ("bookwatch_http_active_requests", "HTTP requests in progress, by method."),
    ]

    static let labelNames: [String: String] = [
        "http.route": "route", "http.request.method": "method", "http.response.status_code": "status_code", "error.type": "error_type",
    ]

    static let secondsBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    static let durationBuckets: [Duration] = secondsBuckets.map { Duration.nanoseconds(Int64($0 * 1e9)) }

    static func sanitize(_ text: String) -> String {
        String(text.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
    }

    func descriptor(_ label: String, counter: Bool = false) -> MetricNameDescriptor {
        if let known = Self.known[label] {
            return MetricNameDescriptor(metricName: known.name, unitName: "", helpText: known.help)
        }
        var name = "bookwatch_" + Self.sanitize(label)
        if counter && !name.hasSuffix("_total") { name += "_total" }
        return MetricNameDescriptor(metricName: name, unitName: "", helpText: "swift-metrics \(label)")
    }

    func labels(_ dimensions: [(String, String)]) -> [(String, String)] {
        dimensions.map { (Self.labelNames[$0.0] ?? Self.sanitize($0.0), $0.1) }
    }

    /// A Prometheus counter named from `label`.
    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label, counter: true), labels: labels(dimensions))
    }

    /// A floating-point Prometheus counter.
    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label, counter: true), labels: labels(dimensions))
    }

    /// A Prometheus gauge.
    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: labels(dimensions))
    }

    /// A Prometheus histogram (aggregate) or gauge.
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        if aggregate {
            return registry.makeValueHistogram(
                descriptor: descriptor(label),
                labels: labels(dimensions),
                buckets: Self.secondsBuckets
            )
        }
        return registry.makeGauge(descriptor: descriptor(label), labels: labels(dimensions))
    }

    /// A Prometheus histogram of durations.
    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: descriptor(label), labels: labels(dimensions), buckets: Self.durationBuckets)
    }

    /// Unregisters a counter.
    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    /// Unregisters a floating-point counter.
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    /// Unregisters a gauge.
    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    /// Unregisters a recorder.
    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    /// Unregisters a timer.
    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
