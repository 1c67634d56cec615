// swift-tools-version: 6.2
// Hot-path micro-benchmarks (ordo-one/benchmark): state machine transitions and webhook decode +
// signature verification, each beside a baseline measured in the same run.
// Run: cd Benchmarks && swift package --disable-sandbox benchmark   (docs/benchmarks.md)
import PackageDescription

let package = Package(
    name: "bookwatch-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "bookwatch", path: ".."),
        // No traits: the default ones (malloc and Swift runtime interposers) crash every benchmark
        // on Linux with Swift 6.3 without ordo-one/swift-runtime-interposer, which this machine's
        // package mirror lacks (docs/decisions.md). Wall clock and throughput need neither.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: []),
    ],
    targets: [
        // The plugin runs every executable target in a folder named Benchmarks (this package's).
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                .product(name: "BookWatchCore", package: "bookwatch"),
                .product(name: "OcrolusAPI", package: "bookwatch"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "HotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ],
    swiftLanguageModes: [.v6]
)
