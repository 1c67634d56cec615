import BookWatchService
import Foundation
import OcrolusAPI
import Testing

@Suite struct ConfigFileTests {
    func writeTemporary(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bw-\(UUID().uuidString).conf").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func parsesNameValueLinesUnderTheEnvironmentAndFlags() throws {
        let text = """
            # bookwatch
            BOOKWATCH_PORT = 9090
            BOOKWATCH_ANALYTICS="summary,signals"

            OCROLUS_CLIENT_ID=from-file
            BOOKWATCH_RATE_LIMIT=4
            """
        let values = try ConfigFile.parse(text, path: "bw.conf")
        #expect(
            values == [
                "BOOKWATCH_PORT": "9090", "BOOKWATCH_ANALYTICS": "summary,signals", "OCROLUS_CLIENT_ID": "from-file",
                "BOOKWATCH_RATE_LIMIT": "4",
            ]
        )
        let path = try writeTemporary(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let layers = try LayeredConfiguration(
            environment: ["OCROLUS_CLIENT_ID": "from-env", "BOOKWATCH_CONFIG": path, "BOOKWATCH_RATE_LIMIT": "3"],
            flags: ["BOOKWATCH_RATE_LIMIT": "2"]
        )
        let merged = layers.merged
        #expect(merged["OCROLUS_CLIENT_ID"] == "from-env")
        #expect(merged["BOOKWATCH_PORT"] == "9090")
        #expect(merged["BOOKWATCH_RATE_LIMIT"] == "2")  // flag > environment > file
        #expect(try IngressSettings.resolve(environment: merged, host: nil, port: nil).port == 9090)
        #expect(layers.source(of: "OCROLUS_CLIENT_ID") == .environment)
        #expect(layers.source(of: "BOOKWATCH_PORT") == .file(path))
        #expect(layers.source(of: "BOOKWATCH_RATE_LIMIT") == .environment)  // no flag exists for it: a flag value is still "environment"
        #expect(layers.source(of: "BOOKWATCH_POLL_MIN_SECONDS") == .default)
    }

    /// Every name reaches the resolvers through swift-configuration's reader from each layer
    /// (its key is the name in dotted form; the provider encodes it back), the earlier layer
    /// winning, an empty value included; names outside the catalog are not settings.
    @Test(arguments: SettingCatalog.fileNames.sorted())
    func everySettingIsReadFromEachLayerInOrder(_ name: String) throws {
        let file = try writeTemporary("\(name)=from-file\n")
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try LayeredConfiguration(environment: [:], configPath: file).merged[name] == "from-file")
        #expect(try LayeredConfiguration(environment: [name: "from-env"], configPath: file).merged[name] == "from-env")
        #expect(try LayeredConfiguration(environment: [name: ""], configPath: file).merged[name] == "")
        let flagged = try LayeredConfiguration(environment: [name: "from-env"], flags: [name: "from-flag"], configPath: file)
        #expect(flagged.merged[name] == "from-flag")
        #expect(flagged.merged.keys.allSatisfy(SettingCatalog.fileNames.contains))
    }

    /// `ocrolus` in the allowlist stands for Ocrolus's published source addresses, beside CIDRs
    /// of one's own; `bookwatch config` shows what it expanded to.
    @Test func theOcrolusPresetExpandsToThePublishedAddresses() throws {
        let settings = try IngressSettings.resolve(
            environment: ["BOOKWATCH_WEBHOOK_ALLOW": "Ocrolus, 10.0.0.0/8"],
            host: nil,
            port: nil
        )
        #expect(settings.allow.count == OcrolusWebhookSources.addresses.count + 1)
        let policy = settings.accessPolicy
        for address in ["18.205.30.63", "18.208.79.114", "18.213.224.210", "18.233.250.22", "35.173.140.133", "35.174.183.80", "54.164.238.206"] {
            #expect(policy.isAllowed(address), "\(address) is published by Ocrolus")
        }
        #expect(policy.isAllowed("10.1.2.3"))
        #expect(!policy.isAllowed("18.205.30.64"))
        let shown = try LayeredConfiguration(environment: ["BOOKWATCH_WEBHOOK_ALLOW": "ocrolus"]).effective.first {
            $0.name == "BOOKWATCH_WEBHOOK_ALLOW"
        }
        #expect(shown?.value == "ocrolus = " + OcrolusWebhookSources.addresses.joined(separator: ","))
        #expect(throws: ConfigurationError.self) {
            try IngressSettings.resolve(environment: ["BOOKWATCH_WEBHOOK_ALLOW": "ocrolus-ish"], host: nil, port: nil)
        }
    }

    @Test func valuesThatMayHoldASecretAreRedactedInTheLibrarysAccessLog() {
        #expect(SettingCatalog.secretNames.isSubset(of: SettingCatalog.redactedNames))
        #expect(SettingCatalog.redactedNames.isSuperset(of: ["BOOKWATCH_DATABASE", "BOOKWATCH_ON_COMPLETE", "OCROLUS_CLIENT_SECRET"]))
    }

    @Test func effectiveConfigurationRedactsEverySecretAndNamesSources() throws {
        let layers = try LayeredConfiguration(
            environment: [
                "OCROLUS_CLIENT_SECRET": "s3cret-value-0123456789", "BOOKWATCH_WEBHOOK_SECRET_FILE": "/run/secrets/webhook",
                "OCROLUS_CLIENT_ID": "client",
            ],
            flags: ["BOOKWATCH_PORT": "9191"]
        )
        let entries = Dictionary(uniqueKeysWithValues: layers.effective.map { ($0.name, $0) })
        #expect(entries.count == SettingCatalog.all.count)
        #expect(entries["OCROLUS_CLIENT_SECRET"]?.value == "(redacted)")
        #expect(entries["BOOKWATCH_WEBHOOK_SECRET"]?.value == "(redacted, read from /run/secrets/webhook)")
        #expect(entries["BOOKWATCH_WEBHOOK_BASIC_AUTH"]?.value == nil)
        #expect(entries["BOOKWATCH_PORT"]?.value == "9191" && entries["BOOKWATCH_PORT"]?.source == .flag("--port"))
        #expect(entries["BOOKWATCH_POLL_MAX_SECONDS"]?.value == "1800" && entries["BOOKWATCH_POLL_MAX_SECONDS"]?.source == .default)
        #expect(!layers.effective.contains { $0.value?.contains("s3cret") == true })
    }

    @Test func catalogDefaultsAreTheResolversDefaults() throws {
        // The table `bookwatch config` and docs/configuration.md show must match what serve does.
        let watcher = try WatcherSettings.resolve(environment: ["OCROLUS_CLIENT_ID": "c", "OCROLUS_CLIENT_SECRET": "s"])
        let ingress = try IngressSettings.resolve(environment: [:], host: nil, port: nil)
        func value(_ name: String) -> String? { SettingCatalog.spec(name)?.defaultValue }
        #expect(value("OCROLUS_API_URL") == watcher.apiURL)
        #expect(value("OCROLUS_AUTH_URL") == watcher.authURL)
        #expect(value("BOOKWATCH_RATE_LIMIT").flatMap(Double.init) == watcher.rate)
        #expect(value("BOOKWATCH_RATE_BURST").flatMap(Double.init) == watcher.burst)
        #expect(value("BOOKWATCH_POLL_MIN_SECONDS").flatMap(Double.init) == watcher.pollMinimum)
        #expect(value("BOOKWATCH_POLL_MAX_SECONDS").flatMap(Double.init) == watcher.pollMaximum)
        #expect(value("BOOKWATCH_WATCH_COMPLETED_HOURS").flatMap(Double.init) == watcher.watchCompletedHours)
        #expect(value("BOOKWATCH_ANALYTICS_RETRY_MAX_SECONDS").flatMap(Double.init) == watcher.analyticsRetryMaximum)
        #expect(value("BOOKWATCH_ANALYTICS") == watcher.analytics.map(\.rawValue).joined(separator: ","))
        #expect(value("BOOKWATCH_AUTO_TRACK") == "\(watcher.autoTrack)")
        #expect(value("BOOKWATCH_WEBHOOK_TRUST") == "measured" && watcher.trustWebhooks)
        #expect(value("BOOKWATCH_HOST") == ingress.host)
        #expect(value("BOOKWATCH_PORT") == "\(ingress.port)")
        #expect(value("BOOKWATCH_WEBHOOK_MAX_BYTES") == "\(ingress.bodyLimit)")
        #expect(value("BOOKWATCH_WEBHOOK_TOLERANCE_SECONDS").flatMap(Double.init) == ingress.signatureTolerance)
    }

    @Test func settingsReachTheWatcherConfiguration() throws {
        let settings = try WatcherSettings.resolve(environment: [
            "OCROLUS_CLIENT_ID": "c", "OCROLUS_CLIENT_SECRET": "s", "BOOKWATCH_WEBHOOK_TRUST": "never", "BOOKWATCH_LEASE_SECONDS": "45",
            "BOOKWATCH_AUTO_TRACK": "false", "BOOKWATCH_ANALYTICS": "summary,signals", "BOOKWATCH_ANALYTICS_RETRY_MAX_SECONDS": "90",
            "BOOKWATCH_ANALYTICS_GIVE_UP_HOURS": "6", "BOOKWATCH_RETAIN_DAYS": "7", "BOOKWATCH_RATE_LIMIT": "2.5",
        ])
        let configuration = settings.watcherConfiguration
        #expect(configuration.requestRate == 2.5)  // sizes the polls while webhooks are silent
        #expect(configuration.trustWebhooks == false && configuration.lease == 45 && configuration.autoTrack == false)
        #expect(configuration.analytics == [.summary, .signals])
        #expect(configuration.analyticsRetry == RetryPolicy(base: 2, cap: 90, maxAttempts: 60))
        #expect(configuration.analyticsGiveUp == 6 * 3600)
        #expect(configuration.retention == 7 * 86400)
        #expect(WatcherSettings().watcherConfiguration.trustWebhooks, "measured by default")
    }

    @Test func aLeaseShorterThanARenewalMayWaitStopsStartupNamingIt() throws {
        let base = ["OCROLUS_CLIENT_ID": "c", "OCROLUS_CLIENT_SECRET": "s"]
        #expect(throws: ConfigurationError(setting: "BOOKWATCH_LEASE_SECONDS", problem: "'30' is not a number of at least 45.0")) {
            try WatcherSettings.resolve(environment: base.merging(["BOOKWATCH_LEASE_SECONDS": "30"]) { $1 })
        }
        #expect(throws: ConfigurationError(setting: "BOOKWATCH_ANALYTICS_GIVE_UP_HOURS", problem: "'0' is not a number of at least 0.01")) {
            try WatcherSettings.resolve(environment: base.merging(["BOOKWATCH_ANALYTICS_GIVE_UP_HOURS": "0"]) { $1 })
        }
    }

    /// A tolerance longer than an inbox row lives would let a replay past the duplicate check.
    @Test func aSignatureToleranceOverAnHourStopsStartupNamingIt() throws {
        for text in ["3601", "inf", "1e9", "0"] {
            #expect(
                throws: ConfigurationError(
                    setting: "BOOKWATCH_WEBHOOK_TOLERANCE_SECONDS",
                    problem: "'\(text)' is not a positive number of seconds, at most 3600"
                )
            ) { try IngressSettings.resolve(environment: ["BOOKWATCH_WEBHOOK_TOLERANCE_SECONDS": text], host: nil, port: nil) }
        }
        #expect(
            try IngressSettings.resolve(environment: ["BOOKWATCH_WEBHOOK_TOLERANCE_SECONDS": "3600"], host: nil, port: nil).signatureTolerance == 3600
        )
    }

    @Test func webhookTrustIsMeasuredOrNeverAndAnythingElseNamesTheSetting() throws {
        let base = ["OCROLUS_CLIENT_ID": "c", "OCROLUS_CLIENT_SECRET": "s"]
        #expect(try WatcherSettings.resolve(environment: base.merging(["BOOKWATCH_WEBHOOK_TRUST": "never"]) { $1 }).trustWebhooks == false)
        #expect(try WatcherSettings.resolve(environment: base.merging(["BOOKWATCH_WEBHOOK_TRUST": "Measured"]) { $1 }).trustWebhooks)
        #expect(throws: ConfigurationError(setting: "BOOKWATCH_WEBHOOK_TRUST", problem: "'always' is not measured or never")) {
            try WatcherSettings.resolve(environment: base.merging(["BOOKWATCH_WEBHOOK_TRUST": "always"]) { $1 })
        }
    }

    @Test func errorsNameTheLine() {
        #expect(throws: ConfigurationError(setting: "bw.conf:2", problem: "unknown setting 'BOOKWATCH_PROT'")) {
            try ConfigFile.parse("BOOKWATCH_PORT=1\nBOOKWATCH_PROT=2", path: "bw.conf")
        }
        #expect(throws: ConfigurationError(setting: "bw.conf:1", problem: "expected NAME=value")) {
            try ConfigFile.parse("just words", path: "bw.conf")
        }
        #expect(throws: ConfigurationError.self) { try LayeredConfiguration(environment: [:], configPath: "/no/such/file") }
    }
}
