/// A benchmark that could not run to its end (a command reports it and exits 1).
package struct BenchFailure: Error, CustomStringConvertible {
    /// What failed.
    package var description: String

    /// A failure saying `description`.
    package init(_ description: String) { self.description = description }
}
