// swift-tools-version: 6.2
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "bookwatch",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bookwatch", targets: ["bookwatch"]),
        .library(name: "BookWatchCore", targets: ["BookWatchCore"]),
        .library(name: "BookWatchStore", targets: ["BookWatchStore"]),
        .library(name: "BookWatchSQLite", targets: ["BookWatchSQLite"]),
        .library(name: "OcrolusAPI", targets: ["OcrolusAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        // Already in the build through Hummingbird; none of its optional traits (JSON, YAML, reloading) are needed.
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: []),
    ],
    targets: [
        .target(
            name: "BookWatchCore",
            swiftSettings: upcoming
        ),
        // The injected clocks: wall time, a scaled clock for live demos, the manual clock of tests.
        .target(
            name: "BookWatchClocks",
            dependencies: ["BookWatchCore"],
            swiftSettings: upcoming
        ),
        // The store-neutral layer: the protocols, row types, transition plans and statements
        // both stores run. No database driver here.
        .target(
            name: "BookWatchStore",
            dependencies: ["BookWatchCore"],
            swiftSettings: upcoming
        ),
        .target(
            name: "BookWatchSQLite",
            dependencies: [
                "BookWatchCore",
                "BookWatchStore",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "BookWatchPostgres",
            dependencies: [
                "BookWatchCore",
                "BookWatchStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "OcrolusAPI",
            dependencies: [
                "BookWatchClocks",
                "BookWatchCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "OcrolusSimulator",
            dependencies: [
                "BookWatchClocks",
                "BookWatchCore",
                "OcrolusAPI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "BookWatchService",
            dependencies: [
                "BookWatchClocks",
                "BookWatchCore",
                "BookWatchStore",
                "OcrolusAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "BookWatchBench",
            dependencies: [
                "BookWatchClocks",
                "BookWatchCore",
                "BookWatchStore",
                "BookWatchSQLite",
                "BookWatchPostgres",
                "OcrolusAPI",
                "OcrolusSimulator",
                "BookWatchService",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "BookWatchCLI",
            dependencies: [
                "BookWatchBench",
                "BookWatchClocks",
                "BookWatchCore",
                "BookWatchStore",
                "BookWatchSQLite",
                "BookWatchPostgres",
                "OcrolusAPI",
                "OcrolusSimulator",
                "BookWatchService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "bookwatch",
            dependencies: ["BookWatchCLI"],
            swiftSettings: upcoming
        ),
        // Helpers more than one test target uses (temporary directories, store states).
        .target(
            name: "BookWatchTestSupport",
            dependencies: ["BookWatchCore", "BookWatchStore"],
            path: "Tests/BookWatchTestSupport",
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "BookWatchCoreTests",
            dependencies: [
                "BookWatchCore",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "BookWatchStoreTests",
            dependencies: ["BookWatchStore", "BookWatchSQLite", "BookWatchTestSupport", "BookWatchCore"],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "StoreConformanceTests",
            dependencies: [
                "BookWatchStore", "BookWatchSQLite", "BookWatchPostgres", "BookWatchCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "BookWatchCLITests",
            dependencies: [
                "BookWatchCLI", "BookWatchBench", "BookWatchStore", "BookWatchSQLite", "BookWatchClocks", "BookWatchTestSupport", "BookWatchCore",
                "BookWatchService",
                "OcrolusAPI", "OcrolusSimulator",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "ChaosTests",
            dependencies: ["BookWatchBench", "BookWatchCore", "OcrolusSimulator"],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "BookWatchServiceTests",
            dependencies: [
                "BookWatchService", "BookWatchStore", "BookWatchSQLite", "BookWatchClocks", "BookWatchTestSupport", "BookWatchCore", "OcrolusAPI",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            resources: [.copy("webhook-signatures.json")],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "OcrolusAPITests",
            dependencies: ["OcrolusAPI", "OcrolusSimulator", "BookWatchClocks", "BookWatchCore"],
            resources: [.copy("Fixtures")],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "OcrolusSimulatorTests",
            dependencies: [
                "OcrolusSimulator", "OcrolusAPI", "BookWatchClocks", "BookWatchCore",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: upcoming
        ),
    ],
    swiftLanguageModes: [.v6]
)
