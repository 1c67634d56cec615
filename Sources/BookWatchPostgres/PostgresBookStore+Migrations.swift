import BookWatchStore
import Foundation
import Logging
import PostgresNIO

extension PostgresBookStore {
    /// The same named migrations as the SQLite store, in PostgreSQL's dialect. Append-only: never
    /// edit one that has shipped; add the next.
    static let migrations: [(name: String, statements: [String])] = [
        (
            "v1-books-documents-inbox-analytics",
            [
                """
                CREATE TABLE books (
                    uuid TEXT PRIMARY KEY NOT NULL,
                    pk BIGINT,
                    state TEXT NOT NULL,
                    generation BIGINT NOT NULL,
                    last_opened_generation BIGINT NOT NULL DEFAULT 0,
                    book_status TEXT,
                    failure_reason TEXT,
                    last_webhook_at BIGINT,
                    last_polled_at BIGINT,
                    finished_at BIGINT,
                    next_poll_at BIGINT,
                    poll_reason TEXT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX books_due_poll ON books(next_poll_at) WHERE next_poll_at IS NOT NULL",
                "CREATE INDEX books_pk ON books(pk) WHERE pk IS NOT NULL",
                "CREATE INDEX books_state ON books(state, uuid)",
                """
                CREATE TABLE documents (
                    book_uuid TEXT NOT NULL REFERENCES books(uuid) ON DELETE CASCADE,
                    position BIGINT NOT NULL,
                    pk BIGINT,
                    uuid TEXT,
                    status TEXT,
                    hint TEXT,
                    covered BOOLEAN NOT NULL DEFAULT FALSE,
                    rejection_reason TEXT,
                    PRIMARY KEY (book_uuid, position)
                )
                """,
                """
                CREATE TABLE webhook_inbox (
                    id BIGSERIAL PRIMARY KEY,
                    request_id TEXT UNIQUE,
                    received_at BIGINT NOT NULL,
                    book_uuid TEXT,
                    book_pk BIGINT,
                    event TEXT NOT NULL,
                    body BYTEA NOT NULL,
                    remote_address TEXT,
                    processed_at BIGINT,
                    outcome TEXT
                )
                """,
                "CREATE INDEX webhook_inbox_pending ON webhook_inbox(id) WHERE processed_at IS NULL",
                """
                CREATE TABLE analytics_jobs (
                    id BIGSERIAL PRIMARY KEY,
                    book_uuid TEXT NOT NULL,
                    generation BIGINT NOT NULL,
                    state TEXT NOT NULL,
                    attempts BIGINT NOT NULL DEFAULT 0,
                    due_at BIGINT,
                    lease_owner TEXT,
                    lease_expires_at BIGINT,
                    last_error TEXT,
                    created_at BIGINT NOT NULL,
                    completed_at BIGINT,
                    UNIQUE (book_uuid, generation)
                )
                """,
                "CREATE INDEX analytics_jobs_due ON analytics_jobs(due_at) WHERE state = 'pending'",
                "CREATE INDEX analytics_jobs_lease ON analytics_jobs(lease_expires_at) WHERE state = 'running'",
                """
                CREATE TABLE analytics_results (
                    book_uuid TEXT NOT NULL,
                    generation BIGINT NOT NULL,
                    endpoint TEXT NOT NULL,
                    body BYTEA NOT NULL,
                    retrieved_at BIGINT NOT NULL,
                    UNIQUE (book_uuid, generation, endpoint)
                )
                """,
            ]
        ),
        (
            "v2-service-health",
            [
                "CREATE TABLE service_health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at BIGINT NOT NULL)"
            ]
        ),
        (
            "v3-notifications",
            [
                """
                CREATE TABLE notifications (
                    book_uuid TEXT NOT NULL,
                    generation BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    delivered_at BIGINT,
                    attempts BIGINT NOT NULL DEFAULT 0,
                    last_error TEXT,
                    PRIMARY KEY (book_uuid, generation)
                )
                """,
                "CREATE INDEX notifications_pending ON notifications(created_at) WHERE delivered_at IS NULL",
            ]
        ),
        (
            "v4-urgent-poll-index",
            [
                "CREATE INDEX books_urgent_poll ON books(next_poll_at) WHERE poll_reason IS NOT NULL"
            ]
        ),
        (
            "v5-claims",
            [
                "ALTER TABLE books ADD COLUMN poll_claimed_at BIGINT",
                "ALTER TABLE books ADD COLUMN snapshot_as_of BIGINT",
                "ALTER TABLE webhook_inbox ADD COLUMN claimed_by TEXT",
                "ALTER TABLE webhook_inbox ADD COLUMN claim_expires_at BIGINT",
            ]
        ),
        (
            "v6-notification-claims",
            [
                "ALTER TABLE notifications ADD COLUMN claimed_by TEXT",
                "ALTER TABLE notifications ADD COLUMN claim_expires_at BIGINT",
            ]
        ),
        (
            "v7-watched-since-creation",
            [
                "ALTER TABLE books ADD COLUMN watched_since_creation BOOLEAN NOT NULL DEFAULT FALSE"
            ]
        ),
        (
            "v8-doubts-fences-tombstones",
            [
                "ALTER TABLE books ADD COLUMN doubt_kind TEXT",
                "ALTER TABLE books ADD COLUMN doubt_since BIGINT",
                "ALTER TABLE books ADD COLUMN poll_failures BIGINT NOT NULL DEFAULT 0",
                "ALTER TABLE books ADD COLUMN untracked_at BIGINT",
                "ALTER TABLE webhook_inbox ADD COLUMN authenticated BOOLEAN NOT NULL DEFAULT FALSE",
                "ALTER TABLE analytics_jobs ADD COLUMN claims BIGINT NOT NULL DEFAULT 0",
                "ALTER TABLE analytics_jobs ADD COLUMN awaiting_view_since BIGINT",
                "ALTER TABLE analytics_jobs ADD COLUMN view_confirmed BOOLEAN NOT NULL DEFAULT FALSE",
                "CREATE INDEX webhook_inbox_processed ON webhook_inbox(processed_at) WHERE processed_at IS NOT NULL",
                "CREATE TABLE deployment_state (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL, updated_at BIGINT NOT NULL)",
                "ALTER TABLE webhook_inbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0",
                "ALTER TABLE webhook_inbox ADD COLUMN not_before BIGINT",
                "ALTER TABLE notifications ADD COLUMN not_before BIGINT",
                "ALTER TABLE analytics_jobs ADD COLUMN ready_announced BOOLEAN NOT NULL DEFAULT FALSE",
                """
                UPDATE books SET finished_at = NULL WHERE state = 'deleted' AND NOT EXISTS (
                    SELECT 1 FROM analytics_jobs j WHERE j.book_uuid = books.uuid AND j.generation = books.generation AND j.state = 'complete')
                """,
            ]
        ),
        // The hint admission decoded, so the watcher does not decode the body again.
        // The lock timeout: behind a long transaction the ALTER fails (startup retries) rather
        // than hold the inbox's inserts (503s) for the whole migration timeout.
        ("v9-inbox-hint", ["SET LOCAL lock_timeout = '5s'", "ALTER TABLE webhook_inbox ADD COLUMN hint TEXT"]),
        (
            "v10-finish-evidence",
            ["SET LOCAL lock_timeout = '5s'", "ALTER TABLE books ADD COLUMN finish_evidence BIGINT"]
        ),
        (
            "v11-book-labels",
            [
                "CREATE TABLE book_labels (book_uuid TEXT PRIMARY KEY, label TEXT, name TEXT)",
                "CREATE INDEX book_labels_label ON book_labels(label) WHERE label IS NOT NULL",
            ]
        ),
        (
            "v12-analytics-pages",
            [
                """
                CREATE TABLE analytics_pages (
                    book_uuid TEXT NOT NULL,
                    generation BIGINT NOT NULL,
                    endpoint TEXT NOT NULL,
                    page_offset BIGINT NOT NULL,
                    body BYTEA NOT NULL,
                    retrieved_at BIGINT NOT NULL,
                    PRIMARY KEY (book_uuid, generation, endpoint, page_offset)
                )
                """
            ]
        ),
        (
            "v13-rate-budget",
            [
                "CREATE TABLE rate_budget (id BIGINT PRIMARY KEY, tat BIGINT NOT NULL, paused_until BIGINT NOT NULL, slow_until BIGINT NOT NULL)",
                "CREATE TABLE rate_demand (owner TEXT PRIMARY KEY, priority_rank BIGINT NOT NULL, since BIGINT NOT NULL, expires_at BIGINT NOT NULL)",
            ]
        ),
        (
            "v14-tracked-state-index",
            // CREATE INDEX blocks writes to `books` while it builds (a fraction of a second at
            // 100k Books) and queues behind open writers first: at most 5 s of that, then the
            // start fails with the lock error and is tried again (CONCURRENTLY cannot run in the
            // migration's transaction, and would wait on replicas parked on the migration lock).
            ["SET LOCAL lock_timeout = '5s'", "CREATE INDEX books_tracked_state ON books(state) WHERE untracked_at IS NULL"]
        ),
        (
            "v15-polled-state-index",
            // The finished Books with a retention poll (`polledCounts`), from the index alone; as
            // v14, at most 5 s of waiting for the lock.
            [
                "SET LOCAL lock_timeout = '5s'",
                "CREATE INDEX books_polled_state ON books(state) WHERE untracked_at IS NULL AND next_poll_at IS NOT NULL",
            ]
        ),
    ]

    /// The names of the migrations, in order.
    public static var migrationNames: [String] { migrations.map(\.name) }

    /// `pg_advisory_lock` key of the migrator ("bookwatch" in ASCII, truncated to 63 bits).
    static let migrationLock: Int64 = 0x626f_6f6b_7761_7463

    /// Applies pending migrations, each in its own transaction, while holding a session advisory
    /// lock: replicas starting at once wait for the first and then find nothing to do.
    func migrate(schema: String?) async throws {
        let logger = self.logger
        do {
            try await withTimeout(seconds: Self.migrationTimeout) {
                try await self.client.withConnection { connection in
                    try await connection.query("SELECT pg_advisory_lock(\(Self.migrationLock))", logger: logger)
                    do {
                        if let schema {  // letters, digits and _ only (checked when the URL was read)
                            try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger)
                        }
                        try await connection.query(
                            "CREATE TABLE IF NOT EXISTS bookwatch_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                            logger: logger
                        )
                        var applied = Set<String>()
                        for row in try await Self.rows(connection, "SELECT name FROM bookwatch_migrations", logger) {
                            applied.insert(try row.value("name"))
                        }
                        for migration in Self.migrations where !applied.contains(migration.name) {
                            try await connection.query("BEGIN", logger: logger)
                            do {
                                for statement in migration.statements {
                                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                                }
                                try await connection.query("INSERT INTO bookwatch_migrations (name) VALUES (\(migration.name))", logger: logger)
                                try await connection.query("COMMIT", logger: logger)
                            } catch {
                                _ = try? await connection.query("ROLLBACK", logger: logger)
                                throw error
                            }
                            logger.notice("applied database migration", metadata: ["migration": "\(migration.name)"])
                        }
                    } catch {
                        _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
                        throw error
                    }
                    try await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
                }
            }
        } catch {
            throw storeError(error)
        }
    }

    /// Names of the migrations applied, in order (tests, `bookwatch config`).
    public func appliedMigrations() async throws -> [String] {
        try await connection { connection in
            try await Self.rows(connection, "SELECT name FROM bookwatch_migrations ORDER BY applied_at, name", self.logger)
                .map { try $0.value("name", as: String.self) }
        }
    }
}
