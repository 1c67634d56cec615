// swift-tools-version: 6.2
// Hot-path micro-benchmarks (google/swift-benchmark): state machine transitions and webhook
// decode + signature verification, each beside a baseline measured in the same run.
// Run: cd Benchmarks && swift run -c release HotPaths   (docs/benchmarks.md)
import PackageDescription

let package = Package(
    name: "bookwatch-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "bookwatch", path: ".."),
        .package(url: "https://github.com/google/swift-benchmark.git", from: "0.1.2"),
    ],
    targets: [
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                .product(name: "BookWatchCore", package: "bookwatch"),
                .product(name: "OcrolusAPI", package: "bookwatch"),
                .product(name: "Benchmark", package: "swift-benchmark"),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
