import BookWatchCore

/// `book_labels`: what names a Book for people, kept apart from the machine's `books` row (whose
/// upsert rewrites every column): the operator's label (`track --label`, `track --from`) and the
/// Book's name as Ocrolus's status answers give it.
package enum BookLabels {
    /// Sets the name a status answer gave, keeping the label; `fillOnly` (a webhook's name) only
    /// where the Book has none.
    package static func setName(_ key: String, _ name: String, fillOnly: Bool = false) -> SQLStep {
        if fillOnly {
            return SQLStep(
                """
                INSERT INTO book_labels (book_uuid, name) VALUES (\(key), \(name))
                ON CONFLICT (book_uuid) DO UPDATE SET name = excluded.name WHERE book_labels.name IS NULL
                """
            )
        }
        return SQLStep(
            """
            INSERT INTO book_labels (book_uuid, name) VALUES (\(key), \(name))
            ON CONFLICT (book_uuid) DO UPDATE SET name = excluded.name
            WHERE book_labels.name IS NULL OR book_labels.name <> excluded.name
            """
        )
    }

    /// Sets (or, nil, clears) the operator's label, keeping the name.
    package static func setLabel(_ key: String, _ label: String?) -> SQLStep {
        SQLStep(
            """
            INSERT INTO book_labels (book_uuid, label) VALUES (\(key), \(label))
            ON CONFLICT (book_uuid) DO UPDATE SET label = excluded.label
            """
        )
    }
}
