import BookWatchService
import Foundation
import Logging
import Synchronization
import Testing

@testable import BookWatchCLI

@Suite struct ConfigCommandTests {
    @Test func printsEverySettingWithItsSourceAndRedactsSecrets() async throws {
        let cli = try CLIHarness()
        let file = cli.directory + "/bw.conf"
        try "BOOKWATCH_POLL_MIN_SECONDS=30\nOCROLUS_CLIENT_ID=from-file\n".write(toFile: file, atomically: true, encoding: .utf8)
        let code = await cli.run(
            ["config", "--config", file, "--port", "9191", "--json"],
            environment: [
                "OCROLUS_CLIENT_ID": "client-1", "OCROLUS_CLIENT_SECRET": "very-secret-client-secret",
                "BOOKWATCH_WEBHOOK_SECRET": "whsec-0123456789abcdef",
            ]
        )
        #expect(code == 0, "\(cli.standardError)")
        struct Output: Decodable {
            struct Setting: Decodable {
                let name: String
                let value: String?
                let source: String
                let secret: Bool
            }
            let settings: [Setting]
            let valid: Bool
        }
        let output = try JSONDecoder().decode(Output.self, from: Data(cli.standardOutput.utf8))
        let byName = Dictionary(uniqueKeysWithValues: output.settings.map { ($0.name, $0) })
        #expect(output.valid)
        #expect(output.settings.count == SettingCatalog.all.count)
        #expect(byName["BOOKWATCH_PORT"]?.value == "9191" && byName["BOOKWATCH_PORT"]?.source == "flag --port")
        #expect(byName["BOOKWATCH_POLL_MIN_SECONDS"]?.value == "30" && byName["BOOKWATCH_POLL_MIN_SECONDS"]?.source == "file \(file)")
        #expect(byName["OCROLUS_CLIENT_ID"]?.value == "client-1" && byName["OCROLUS_CLIENT_ID"]?.source == "environment")
        #expect(byName["BOOKWATCH_RATE_LIMIT"]?.value == "5" && byName["BOOKWATCH_RATE_LIMIT"]?.source == "default")
        #expect(byName["OCROLUS_CLIENT_SECRET"]?.value == "(redacted)")
        #expect(!cli.standardOutput.contains("very-secret") && !cli.standardOutput.contains("whsec-"))
    }

    @Test func aDatabaseURLIsShownWithoutItsPassword() async throws {
        let cli = try CLIHarness()
        let url = "postgres://bookwatch:pg-pass-1234@db.internal:5432/bookwatch?sslmode=require"
        #expect(
            await cli.run(
                ["config"],
                environment: [
                    "OCROLUS_CLIENT_ID": "c", "OCROLUS_CLIENT_SECRET": "s",
                    "BOOKWATCH_DATABASE": url,
                ]
            ) == 0
        )
        #expect(cli.standardOutput.contains("postgres://bookwatch:***@db.internal:5432/bookwatch?sslmode=require"))
        #expect(!cli.standardOutput.contains("pg-pass-1234"))
        // A malformed URL is a usage error naming the setting, still without the password.
        #expect(await cli.run(["status", "--database", "postgres://:pg-pass-1234@db.internal/x"]) == 2)
        #expect(cli.standardError.contains("BOOKWATCH_DATABASE") && !cli.standardError.contains("pg-pass-1234"))
    }

    @Test func aBadSettingExitsTwoNamingIt() async throws {
        let cli = try CLIHarness()
        let code = await cli.run(
            ["config"],
            environment: [
                "OCROLUS_CLIENT_ID": "c", "OCROLUS_CLIENT_SECRET": "s", "BOOKWATCH_POLL_MIN_SECONDS": "soon",
            ]
        )
        #expect(code == 2)
        #expect(cli.standardError.contains("BOOKWATCH_POLL_MIN_SECONDS"))
        // The table still shows what was read.
        #expect(cli.standardOutput.split(separator: "\n").contains { $0.hasPrefix("BOOKWATCH_POLL_MIN_SECONDS ") && $0.contains(" soon ") })
        #expect(await cli.run(["config", "--log-format", "xml"]) == 2)
        #expect(
            await cli.run(
                ["config"],
                environment: [
                    "OCROLUS_CLIENT_ID": "c", "OCROLUS_CLIENT_SECRET": "s",
                    "BOOKWATCH_LOG_LEVEL": "loud",
                ]
            ) == 2
        )
        #expect(cli.standardError.contains("BOOKWATCH_LOG_LEVEL"))
    }

    @Test func textTableListsEverySetting() async throws {
        let cli = try CLIHarness()
        #expect(await cli.run(["config"], environment: ["OCROLUS_CLIENT_ID": "c", "OCROLUS_CLIENT_SECRET": "s"]) == 0)
        let lines = cli.standardOutput.split(separator: "\n")
        #expect(lines.first?.hasPrefix("NAME") == true)
        for spec in SettingCatalog.all { #expect(lines.contains { $0.hasPrefix(spec.name + " ") }, "\(spec.name)") }
    }

    @Test func configurationDocDescribesEverySetting() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        for spec in SettingCatalog.all {
            #expect(doc.contains("`\(spec.name)`"), "docs/configuration.md does not describe \(spec.name)")
            if let value = spec.defaultValue { #expect(doc.contains(value), "docs/configuration.md lacks the default of \(spec.name)") }
        }
    }
}

@Suite struct LogLineTests {
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
        func append(_ line: String) { lines.withLock { $0.append(line) } }
    }

    func logger(_ format: LogFormat, _ lines: Lines) -> Logger {
        Logger(label: "bookwatch") { label in
            LineLogHandler(
                label: label,
                format: format,
                level: .info,
                now: { Date(timeIntervalSince1970: 1_774_000_000) },
                write: { lines.append($0) }
            )
        }
    }

    @Test func textIsOneLinePerEventWithSortedMetadata() {
        let lines = Lines()
        var log = logger(.text, lines)
        log[metadataKey: "request_id"] = "req-1"
        log.info("webhook applied", metadata: ["book_uuid": "09c52985-2f05-4022-a738-9277cc335c7e", "event": "book verified"])
        log.debug("not shown at info")
        #expect(
            lines.all == [
                "2026-03-20T09:46:40.000Z info bookwatch: webhook applied book_uuid=09c52985-2f05-4022-a738-9277cc335c7e event=\"book verified\" request_id=req-1\n"
            ]
        )
    }

    @Test func jsonIsOneObjectPerLine() throws {
        let lines = Lines()
        let log = logger(.json, lines)
        log.warning("status poll failed; retrying later", metadata: ["book_uuid": "b1", "retry_in_s": "10"])
        let line = try #require(lines.all.first)
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(
            object == [
                "ts": "2026-03-20T09:46:40.000Z", "level": "warning", "logger": "bookwatch",
                "msg": "status poll failed; retrying later", "book_uuid": "b1", "retry_in_s": "10",
            ]
        )
    }
}
