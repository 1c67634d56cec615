import BookWatchService
import Foundation
import Testing

@Suite struct ConfigFileTests {
    @Test func parsesNameValueLinesUnderTheEnvironment() throws {
        let text = """
            # bookwatch
            BOOKWATCH_PORT = 9090
            BOOKWATCH_ANALYTICS="summary,signals"

            OCROLUS_CLIENT_ID=from-file
            """
        let values = try ConfigFile.parse(text, path: "bw.conf")
        #expect(values == ["BOOKWATCH_PORT": "9090", "BOOKWATCH_ANALYTICS": "summary,signals", "OCROLUS_CLIENT_ID": "from-file"])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bw-\(UUID().uuidString).conf").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let merged = try ConfigFile.merged(environment: ["OCROLUS_CLIENT_ID": "from-env", "BOOKWATCH_CONFIG": path], path: nil)
        #expect(merged["OCROLUS_CLIENT_ID"] == "from-env")
        #expect(merged["BOOKWATCH_PORT"] == "9090")
        let settings = try IngressSettings.resolve(environment: merged, host: nil, port: nil)
        #expect(settings.port == 9090)
        #expect(try IngressSettings.resolve(environment: merged, host: nil, port: 7070).port == 7070)  // the flag wins
    }

    @Test func errorsNameTheLine() {
        #expect(throws: ConfigurationError(setting: "bw.conf:2", problem: "unknown setting 'BOOKWATCH_PROT'")) {
            try ConfigFile.parse("BOOKWATCH_PORT=1\nBOOKWATCH_PROT=2", path: "bw.conf")
        }
        #expect(throws: ConfigurationError(setting: "bw.conf:1", problem: "expected NAME=value")) {
            try ConfigFile.parse("just words", path: "bw.conf")
        }
        #expect(throws: ConfigurationError.self) { try ConfigFile.merged(environment: [:], path: "/no/such/file") }
    }
}
