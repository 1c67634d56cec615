import Foundation

/// A real directory under the system temp dir, removed when the test is done.
package struct TemporaryDirectory: ~Copyable {
    package let path: String

    package init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("bookwatch-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    package func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A directory that this process cannot write into, however privileged it is.
///
/// An unprivileged user gets a `chmod 0555` directory. root ignores permission bits, so for root
/// it is a read-only tmpfs mount (root may mount in this sandbox); where that is refused too,
/// a directory of procfs, which nobody can create files in.
package final class ReadOnlyDirectory {
    package let path: String
    private var mounted = false
    private var chmodded = false

    package init(inside parent: String) throws {
        let candidate = parent + "/read-only"
        try FileManager.default.createDirectory(atPath: candidate, withIntermediateDirectories: true)
        if getuid() != 0 {
            chmod(candidate, 0o555)
            path = candidate
            chmodded = true
        } else if Shell.run("/bin/mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", candidate]) {
            path = candidate
            mounted = true
        } else {
            path = "/proc/self/fdinfo"
        }
    }

    deinit {
        if mounted { _ = Shell.run("/bin/umount", [path]) }
        if chmodded { chmod(path, 0o755) }
    }
}

/// Runs a tool quietly; true when it exits 0.
package enum Shell {
    package static func run(_ tool: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        } catch {
            return false
        }
    }
}
