import BookWatchCore
import Foundation
import OcrolusAPI

/// The API and watcher part of `serve`'s configuration, from the environment (names in
/// architecture.md), validated before anything starts.
public struct WatcherSettings: Sendable {
    /// `OCROLUS_API_URL`.
    public var apiURL = "https://api.ocrolus.com"
    /// `OCROLUS_AUTH_URL`.
    public var authURL = "https://auth.ocrolus.com/oauth/token"
    /// `OCROLUS_CLIENT_ID`.
    public var clientID = ""
    /// `OCROLUS_CLIENT_SECRET` (or the file `_FILE` names).
    public var clientSecret = ""
    /// `BOOKWATCH_RATE_LIMIT`: requests per second.
    public var rate = 5.0
    /// `BOOKWATCH_RATE_BURST`.
    public var burst = 25.0
    /// `BOOKWATCH_POLL_MIN_SECONDS`.
    public var pollMinimum: TimeInterval = 60
    /// `BOOKWATCH_POLL_MAX_SECONDS`.
    public var pollMaximum: TimeInterval = 1800
    /// `BOOKWATCH_ANALYTICS`: the endpoints retrieved per finished generation.
    public var analytics: [AnalyticsEndpoint] = [.summary]
    /// `BOOKWATCH_AUTO_TRACK`.
    public var autoTrack = true
    /// `BOOKWATCH_WATCH_COMPLETED_HOURS`: how long a finished Book is polled for reopens.
    public var watchCompletedHours = 168.0
    /// Longest wait between analytics attempts (425 and transient errors).
    public var analyticsRetryMaximum: TimeInterval = 300
    /// How long a claim (poll, inbox row, analytics job) holds: work a dead replica claimed waits
    /// at most this long before another replica takes it.
    public var lease: TimeInterval = 120
    /// A job not retrieved this many hours after it opened fails (waiting on 425 is not an error).
    public var analyticsGiveUpHours = 48.0
    /// `BOOKWATCH_RETAIN_DAYS`: processed deliveries, delivered notifications and finished jobs of
    /// earlier generations older than this are pruned.
    public var retainDays = 30.0
    /// `BOOKWATCH_ON_COMPLETE_TIMEOUT`: an `--on-complete` command running longer is stopped.
    public var onCompleteTimeout: TimeInterval = 60
    /// `BOOKWATCH_WEBHOOK_TRUST`: `measured` (true) or `never` (false); see `WatcherConfiguration`.
    public var trustWebhooks = true

    /// The defaults.
    public init() {}

    /// Where the Ocrolus API is and as whom it is called (`serve` and `bookwatch webhooks`).
    public var ocrolusConfiguration: OcrolusConfiguration {
        OcrolusConfiguration(apiBaseURL: apiURL, tokenURL: authURL, credentials: .init(clientID: clientID, clientSecret: clientSecret))
    }

    /// The poll schedule these settings describe; `watchCompletedHours` 0 means finished Books are
    /// not polled again (a reopen is then noticed by webhook only).
    public var pollSchedule: PollSchedule {
        PollSchedule(minimum: pollMinimum, maximum: pollMaximum, retention: watchCompletedHours * 3600)
    }

    /// The watcher's configuration these settings describe (everything else keeps its default).
    public var watcherConfiguration: WatcherConfiguration {
        var configuration = WatcherConfiguration()
        configuration.analytics = analytics
        configuration.autoTrack = autoTrack
        configuration.lease = lease
        configuration.trustWebhooks = trustWebhooks
        configuration.requestRate = rate
        configuration.analyticsRetry = RetryPolicy(base: min(2, analyticsRetryMaximum), cap: analyticsRetryMaximum, maxAttempts: 60)
        configuration.analyticsGiveUp = analyticsGiveUpHours * 3600
        configuration.retention = retainDays * 86400
        return configuration
    }

    /// The shortest lease `serve` accepts: an analytics request's timeout (30 s) plus the longest a
    /// store write may wait (10 s), with a margin.
    public static let minimumLease: TimeInterval = 45

    /// Reads and validates every watcher setting; an error names the setting.
    public static func resolve(environment env: [String: String]) throws(ConfigurationError) -> WatcherSettings {
        var settings = WatcherSettings()
        func value(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
        func number(_ name: String, _ current: Double, minimum: Double) throws(ConfigurationError) -> Double {
            guard let text = value(name) else { return current }
            guard let parsed = Double(text), parsed >= minimum, parsed.isFinite else {
                throw ConfigurationError(setting: name, problem: "'\(text)' is not a number of at least \(minimum)")
            }
            return parsed
        }
        func url(_ name: String, _ current: String) throws(ConfigurationError) -> String {
            guard let text = value(name) else { return current }
            guard let parsed = URL(string: text), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw ConfigurationError(setting: name, problem: "'\(text)' is not an http(s) URL")
            }
            return text
        }
        settings.apiURL = try url("OCROLUS_API_URL", settings.apiURL)
        settings.authURL = try url("OCROLUS_AUTH_URL", settings.authURL)
        guard let clientID = value("OCROLUS_CLIENT_ID") else {
            throw ConfigurationError(setting: "OCROLUS_CLIENT_ID", problem: "required (the API client id)")
        }
        settings.clientID = clientID
        guard let secret = try IngressSettings.secrets(env, name: "OCROLUS_CLIENT_SECRET", split: false).first else {
            throw ConfigurationError(setting: "OCROLUS_CLIENT_SECRET", problem: "required (or OCROLUS_CLIENT_SECRET_FILE)")
        }
        settings.clientSecret = secret
        settings.rate = try number("BOOKWATCH_RATE_LIMIT", settings.rate, minimum: 0.01)
        settings.burst = try number("BOOKWATCH_RATE_BURST", settings.burst, minimum: 1)
        settings.pollMinimum = try number("BOOKWATCH_POLL_MIN_SECONDS", settings.pollMinimum, minimum: 1)
        settings.pollMaximum = try number("BOOKWATCH_POLL_MAX_SECONDS", settings.pollMaximum, minimum: 1)
        guard settings.pollMaximum >= settings.pollMinimum else {
            throw ConfigurationError(
                setting: "BOOKWATCH_POLL_MAX_SECONDS",
                problem: "\(settings.pollMaximum) is below BOOKWATCH_POLL_MIN_SECONDS \(settings.pollMinimum)"
            )
        }
        settings.analyticsRetryMaximum = try number("BOOKWATCH_ANALYTICS_RETRY_MAX_SECONDS", settings.analyticsRetryMaximum, minimum: 1)
        // A running job's lease is renewed just before each analytics request is sent (after any
        // limiter wait, a Retry-After pause of up to 600 s included); from there it must outlast
        // the request (30 s timeout) and the fenced write of its outcome (up to 10 s on PostgreSQL).
        settings.lease = try number("BOOKWATCH_LEASE_SECONDS", settings.lease, minimum: Self.minimumLease)
        settings.analyticsGiveUpHours = try number("BOOKWATCH_ANALYTICS_GIVE_UP_HOURS", settings.analyticsGiveUpHours, minimum: 0.01)
        // At least a day: a delivery's request id must outlive Ocrolus's retries (minutes) to dedupe them.
        settings.retainDays = try number("BOOKWATCH_RETAIN_DAYS", settings.retainDays, minimum: 1)
        settings.onCompleteTimeout = try number("BOOKWATCH_ON_COMPLETE_TIMEOUT", settings.onCompleteTimeout, minimum: 1)
        settings.watchCompletedHours = try number("BOOKWATCH_WATCH_COMPLETED_HOURS", settings.watchCompletedHours, minimum: 0)
        if let text = value("BOOKWATCH_ANALYTICS") {
            switch AnalyticsEndpoint.parseList(text) {
            case .success(let endpoints): settings.analytics = endpoints
            case .failure(let error): throw ConfigurationError(setting: "BOOKWATCH_ANALYTICS", problem: error.description)
            }
        }
        if let text = value("BOOKWATCH_WEBHOOK_TRUST") {
            switch text.lowercased() {
            case "measured": settings.trustWebhooks = true
            case "never": settings.trustWebhooks = false
            default: throw ConfigurationError(setting: "BOOKWATCH_WEBHOOK_TRUST", problem: "'\(text)' is not measured or never")
            }
        }
        if let text = value("BOOKWATCH_AUTO_TRACK") {
            switch text.lowercased() {
            case "true", "1", "yes", "on": settings.autoTrack = true
            case "false", "0", "no", "off": settings.autoTrack = false
            default: throw ConfigurationError(setting: "BOOKWATCH_AUTO_TRACK", problem: "'\(text)' is not true or false")
            }
        }
        return settings
    }

    /// The settings for the startup log line, secrets left out.
    public var redactedSummary: String {
        "api=\(apiURL) auth=\(authURL) client_id=\(clientID) client_secret=(redacted) rate=\(rate)/s burst=\(Int(burst)) "
            + "poll=\(Int(pollMinimum))-\(Int(pollMaximum))s analytics=\(analytics.map(\.rawValue).joined(separator: ",")) "
            + "auto_track=\(autoTrack) analytics_retry_max_s=\(Int(analyticsRetryMaximum)) watch_completed_hours=\(watchCompletedHours) "
            + "lease_s=\(Int(lease)) analytics_give_up_hours=\(analyticsGiveUpHours) retain_days=\(retainDays) on_complete_timeout_s=\(Int(onCompleteTimeout)) webhook_trust=\(trustWebhooks ? "measured" : "never")"
    }
}
