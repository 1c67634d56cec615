/// A benchmark that could not run to its end (a command reports it and exits 1).
package struct BenchFailure: Error, CustomStringConvertible {
    package var description: String

    package init(_ description: String) { self.description = description }
}
