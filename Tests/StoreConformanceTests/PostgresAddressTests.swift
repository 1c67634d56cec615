import BookWatchPostgres
import BookWatchStore
import Foundation
import Testing

/// `BOOKWATCH_DATABASE=postgres://...`: what is refused, and that errors never show the password.
@Suite struct PostgresAddressTests {
    @Test(arguments: [
        ("postgres://127.0.0.1/db", "names no user"),
        ("postgres://u:p@/db", "expected postgres://"),
        ("postgres://u:p@h/db?sslmode=sometimes", "sslmode 'sometimes'"),
        ("postgres://u:p@h/db?schema=a;drop", "schema 'a;drop'"),
    ])
    func malformedURLsSayWhy(url: String, reason: String) async throws {
        await #expect {
            _ = try await PostgresBookStore.open(url: url)
        } throws: { error in
            let text = String(describing: error)
            return text.contains(reason) && text.contains("BOOKWATCH_DATABASE")
        }
    }

    @Test func anUnreachableServerFailsNamingItWithoutThePassword() async throws {
        // Port 1 on loopback: nothing listens. The direct connection's own reason comes back
        // (refused), not a pool's quiet retries ending in a timeout.
        await #expect {
            _ = try await PostgresBookStore.open(url: "postgres://bookwatch:s3cret-pw@127.0.0.1:1/bookwatch?sslmode=disable")
        } throws: { error in
            let text = String(describing: error)
            return text.contains("postgres://bookwatch@127.0.0.1:1/bookwatch") && !text.contains("s3cret-pw")
                && text.contains("Connection refused")
        }
    }
}
