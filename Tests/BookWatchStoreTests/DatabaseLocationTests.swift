import BookWatchStore
import Foundation
import Testing

/// The benchmarks and the chaos search add a schema of their own to a PostgreSQL URL, and drop
/// it after: never to a URL that chose one already, or might have (a fragment would swallow it).
@Suite struct DatabaseLocationTests {
    @Test(arguments: [
        ("postgres://u:p@h:5432/db", "postgres://u:p@h:5432/db?schema=s1"),
        ("postgres://u:p@h/db?sslmode=disable", "postgres://u:p@h/db?sslmode=disable&schema=s1"),
        // "schema=" outside the query (here in the password) names no schema.
        ("postgres://u:schema=1@h/db", "postgres://u:schema=1@h/db?schema=s1"),
    ])
    func aSchemaIsAddedToTheQuery(_ url: String, _ named: String) {
        #expect(!DatabaseLocation.namesSchema(url))
        #expect(DatabaseLocation.url(url, schema: "s1") == named)
        #expect(DatabaseLocation.namesSchema(named))
    }

    @Test(arguments: [
        "postgres://u@h/db?schema=prod", "postgres://u@h/db?sslmode=disable&schema=prod", "postgres://u@h/db#x", "postgres://u@h/db?a=1#schema",
    ])
    func aURLThatNamesOrMightHideASchemaGetsNone(_ url: String) {
        #expect(DatabaseLocation.namesSchema(url))
        #expect(DatabaseLocation.url(url, schema: "s1") == nil)
    }
}
