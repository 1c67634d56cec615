/// Rows of one table on their way from one store to another (`bookwatch migrate`): the column
/// names and, per row, the values in that order as the source stored them.
package struct TableBatch: Sendable {
    /// The table.
    package var table: String
    /// Its columns, in the order of each row's values.
    package var columns: [String]
    /// The rows.
    package var rows: [[SQLValue]]

    /// A batch of `rows` of `table`.
    package init(table: String, columns: [String], rows: [[SQLValue]]) {
        self.table = table
        self.columns = columns
        self.rows = rows
    }
}

/// The tables `bookwatch migrate` copies, in an order that keeps references valid: everything a
/// deployment keeps (Books and their tombstones, documents, labels, the inbox, jobs, results,
/// pages, notifications, the shared estimate). Not copied: the health probe's row and the rate
/// budget (a new deployment's own), and each store's migration bookkeeping.
package enum CopiedTables {
    /// The tables, in copy order.
    package static let all = [
        "books", "documents", "book_labels", "webhook_inbox", "analytics_jobs", "analytics_results", "analytics_pages",
        "notifications", "deployment_state",
    ]
    /// Tables whose ids come from a sequence on PostgreSQL (moved past the copied ids).
    package static let sequenced = ["webhook_inbox", "analytics_jobs"]
    /// Tables knowingly left behind: the health probe's row and the rate budget (the new
    /// deployment's own). Any other table not copied stops the copy (a newer version's table).
    package static let excluded = ["service_health", "rate_budget", "rate_demand"]
}
