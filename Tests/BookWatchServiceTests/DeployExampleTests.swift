import BookWatchService
import Foundation
import OcrolusAPI
import Testing

/// The files under deploy/ hold values operators copy: they are checked against the code.
@Suite struct DeployExampleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// The `{name: X, value: Y}` environment entries of the Kubernetes example.
    static func kubernetesEnvironment() throws -> [String: String] {
        let yaml = try read("deploy/kubernetes/bookwatch.yaml")
        let entry = /\{name: ([A-Z_]+), value: ([^}]+)\}/
        var environment: [String: String] = [:]
        for match in yaml.matches(of: entry) {
            environment[String(match.1)] = String(match.2).trimmingCharacters(in: .whitespaces).trimmingCharacters(
                in: CharacterSet(charactersIn: "\"")
            )
        }
        return environment
    }

    static let ingressPod = "10.42.0.7"

    @Test func theKubernetesExampleLetsOcrolusThroughTheIngressAndNothingElse() throws {
        let environment = try Self.kubernetesEnvironment()
        #expect(environment["BOOKWATCH_WEBHOOK_ALLOW"] != nil)
        let settings = try IngressSettings.resolve(environment: environment, host: nil, port: nil)
        let admission = WebhookAdmission(access: settings.accessPolicy, verifier: nil)
        func screen(peer: String, forwardedFor: String?) -> WebhookAdmission.Screening {
            admission.screen(header: { $0 == WebhookAdmission.Header.forwardedFor ? forwardedFor : nil }, peer: peer)
        }
        // Every published Ocrolus address, through the ingress controller (X-Forwarded-For set).
        for address in OcrolusWebhookSources.addresses {
            #expect(screen(peer: Self.ingressPod, forwardedFor: address) == .read(client: address), "\(address)")
        }
        // Anything else: a stranger through the ingress, one who forges an Ocrolus hop in front of
        // its own, a pod posting straight to the service, a peer outside the cluster.
        let refused: [(String, String?)] = [
            (Self.ingressPod, "203.0.113.9"), (Self.ingressPod, "18.205.30.63, 203.0.113.9"), (Self.ingressPod, nil),
            ("203.0.113.9", "18.205.30.63"),
        ]
        for (peer, forwardedFor) in refused {
            guard case .refuse(let answer) = screen(peer: peer, forwardedFor: forwardedFor) else {
                Issue.record("peer \(peer), X-Forwarded-For \(forwardedFor ?? "none") was let through")
                continue
            }
            #expect(answer.status == 403)
        }
        // The admin listener is separate, and probes and scrapes use it.
        #expect(settings.adminPort == 9090)
        #expect(settings.port == 8080)
        let yaml = try Self.read("deploy/kubernetes/bookwatch.yaml")
        #expect(yaml.contains("httpGet: {path: /readyz, port: admin}"))
        #expect(yaml.contains("prometheus.io/port: \"9090\""))
        #expect(!yaml.contains("prometheus.io/port: \"8080\""))
    }

    /// Gauges every replica reads from the one database: summing them over replicas multiplies them.
    static let databaseWideGauges = ["bookwatch_books", "bookwatch_documents", "bookwatch_inbox_pending", "bookwatch_polls_overdue"]

    @Test func grafanaTakesTheMaxNotTheSumOfDatabaseWideGauges() throws {
        let dashboard = try JSONSerialization.jsonObject(with: Data(try Self.read("deploy/grafana/bookwatch-dashboard.json").utf8)) as? [String: Any]
        let panels = dashboard?["panels"] as? [[String: Any]] ?? []
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        var checked = 0
        for expression in expressions {
            for gauge in Self.databaseWideGauges where expression.contains(gauge + "{") {
                checked += 1
                let aggregation = /(sum|max|min|avg)(\s+by\s*\([^)]*\))?\s*\(\s*/
                let before = expression[..<(expression.range(of: gauge + "{")?.lowerBound ?? expression.endIndex)]
                let last = before.matches(of: aggregation).last.map { String($0.1) }
                #expect(last == "max", "\(expression)")
            }
        }
        #expect(checked >= 6)
    }

    /// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
    static func anchor(_ heading: String) -> String {
        String(
            heading.lowercased().compactMap { character -> Character? in
                if character == " " { return "-" }
                return character.isLetter || character.isNumber || character == "-" || character == "_" ? character : nil
            }
        )
    }

    @Test func everyRunbookLinkResolvesToAHeadingOfTheRunbook() throws {
        let runbook = try Self.read("docs/operations.md")
        let anchors = Set(
            runbook.split(separator: "\n").filter { $0.hasPrefix("#") }.map { line in
                Self.anchor(line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces))
            }
        )
        #expect(anchors.contains("webhooks-silent-or-lossy"))
        var links = 0
        for file in ["deploy/prometheus/bookwatch-rules.yml", "deploy/prometheus/bookwatch-rules.test.yml"] {
            for match in try Self.read(file).matches(of: /docs\/operations\.md#([a-z0-9_-]+)/) {
                links += 1
                #expect(anchors.contains(String(match.1)), "\(file): #\(match.1) is not a heading of docs/operations.md")
            }
        }
        #expect(links >= 14)
    }
}
