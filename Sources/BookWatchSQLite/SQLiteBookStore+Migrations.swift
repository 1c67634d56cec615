import BookWatchStore
import GRDB

extension SQLiteBookStore {
    /// Named, append-only migrations: never edit one that has shipped; add the next.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-books-documents-inbox-analytics") { db in
            try db.execute(
                sql: """
                    CREATE TABLE books (
                        uuid TEXT PRIMARY KEY NOT NULL,
                        pk INTEGER,
                        state TEXT NOT NULL,
                        generation INTEGER NOT NULL,
                        last_opened_generation INTEGER NOT NULL DEFAULT 0,
                        book_status TEXT,
                        failure_reason TEXT,
                        last_webhook_at INTEGER,
                        last_polled_at INTEGER,
                        finished_at INTEGER,
                        next_poll_at INTEGER,
                        poll_reason TEXT,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL
                    );
                    -- "due for a poll": the scheduler asks only for rows whose time has come.
                    CREATE INDEX books_due_poll ON books(next_poll_at) WHERE next_poll_at IS NOT NULL;
                    CREATE INDEX books_pk ON books(pk) WHERE pk IS NOT NULL;
                    CREATE INDEX books_state ON books(state, uuid);

                    CREATE TABLE documents (
                        book_uuid TEXT NOT NULL REFERENCES books(uuid) ON DELETE CASCADE,
                        position INTEGER NOT NULL,
                        pk INTEGER,
                        uuid TEXT,
                        status TEXT,
                        hint TEXT,
                        covered INTEGER NOT NULL DEFAULT 0,
                        rejection_reason TEXT,
                        PRIMARY KEY (book_uuid, position)
                    ) WITHOUT ROWID;

                    CREATE TABLE webhook_inbox (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        request_id TEXT UNIQUE,
                        received_at INTEGER NOT NULL,
                        book_uuid TEXT,
                        book_pk INTEGER,
                        event TEXT NOT NULL,
                        body BLOB NOT NULL,
                        remote_address TEXT,
                        processed_at INTEGER,
                        outcome TEXT
                    );
                    CREATE INDEX webhook_inbox_pending ON webhook_inbox(id) WHERE processed_at IS NULL;

                    CREATE TABLE analytics_jobs (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        book_uuid TEXT NOT NULL,
                        generation INTEGER NOT NULL,
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        due_at INTEGER,
                        lease_owner TEXT,
                        lease_expires_at INTEGER,
                        last_error TEXT,
                        created_at INTEGER NOT NULL,
                        completed_at INTEGER,
                        UNIQUE (book_uuid, generation)
                    );
                    -- "due analytics job": pending jobs by due time; leases by expiry for the sweeper.
                    CREATE INDEX analytics_jobs_due ON analytics_jobs(due_at) WHERE state = 'pending';
                    CREATE INDEX analytics_jobs_lease ON analytics_jobs(lease_expires_at) WHERE state = 'running';

                    CREATE TABLE analytics_results (
                        book_uuid TEXT NOT NULL,
                        generation INTEGER NOT NULL,
                        endpoint TEXT NOT NULL,
                        body BLOB NOT NULL,
                        retrieved_at INTEGER NOT NULL,
                        UNIQUE (book_uuid, generation, endpoint)
                    );
                    """
            )
        }
        migrator.registerMigration("v2-service-health") { db in
            // One row, rewritten by readiness probes to prove the database takes writes.
            try db.execute(sql: "CREATE TABLE service_health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at INTEGER NOT NULL)")
        }
        migrator.registerMigration("v3-notifications") { db in
            // Outbox of retrievals to hand on (--on-complete): written with the completion, delivered
            // at least once, deduplicated downstream by the key book_uuid:generation.
            try db.execute(
                sql: """
                    CREATE TABLE notifications (
                        book_uuid TEXT NOT NULL,
                        generation INTEGER NOT NULL,
                        created_at INTEGER NOT NULL,
                        delivered_at INTEGER,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        last_error TEXT,
                        PRIMARY KEY (book_uuid, generation)
                    );
                    CREATE INDEX notifications_pending ON notifications(created_at) WHERE delivered_at IS NULL;
                    """
            )
        }
        migrator.registerMigration("v4-urgent-poll-index") { db in
            // Urgent polls (webhook hint, operator, startup) by due time, so the scheduler finds
            // them without sorting every due row.
            try db.execute(sql: "CREATE INDEX books_urgent_poll ON books(next_poll_at) WHERE poll_reason IS NOT NULL")
        }
        migrator.registerMigration("v5-claims") { db in
            // Replicas claim work before doing it (the PostgreSQL store; SQLite keeps the same
            // columns so both stores carry out the same plans): a poll in flight, the newest
            // snapshot applied, and inbox rows being processed.
            try db.execute(
                sql: """
                    ALTER TABLE books ADD COLUMN poll_claimed_at INTEGER;
                    ALTER TABLE books ADD COLUMN snapshot_as_of INTEGER;
                    ALTER TABLE webhook_inbox ADD COLUMN claimed_by TEXT;
                    ALTER TABLE webhook_inbox ADD COLUMN claim_expires_at INTEGER;
                    """
            )
        }
        migrator.registerMigration("v6-notification-claims") { db in
            // The --on-complete hook claims a retrieval before running, so replicas do not all run it.
            try db.execute(
                sql: """
                    ALTER TABLE notifications ADD COLUMN claimed_by TEXT;
                    ALTER TABLE notifications ADD COLUMN claim_expires_at INTEGER;
                    """
            )
        }
        migrator.registerMigration("v7-watched-since-creation") { db in
            // Books tracked when the lender created them (`track --new`): their first poll is
            // evidence for the webhook loss estimate, since no document can predate the watching.
            try db.execute(sql: "ALTER TABLE books ADD COLUMN watched_since_creation INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v8-doubts-fences-tombstones") { db in
            // Doubts (an odd answer waiting for a second), per-Book poll failures, untracked
            // tombstones, authenticated deliveries, and job claims fenced by a lease token.
            try db.execute(
                sql: """
                    ALTER TABLE books ADD COLUMN doubt_kind TEXT;
                    ALTER TABLE books ADD COLUMN doubt_since INTEGER;
                    ALTER TABLE books ADD COLUMN poll_failures INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE books ADD COLUMN untracked_at INTEGER;
                    ALTER TABLE webhook_inbox ADD COLUMN authenticated INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE analytics_jobs ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE analytics_jobs ADD COLUMN awaiting_view_since INTEGER;
                    ALTER TABLE analytics_jobs ADD COLUMN view_confirmed INTEGER NOT NULL DEFAULT 0;
                    -- Pruning by age (BOOKWATCH_RETAIN_DAYS) finds old processed deliveries without a scan.
                    CREATE INDEX webhook_inbox_processed ON webhook_inbox(processed_at) WHERE processed_at IS NOT NULL;
                    -- What the deployment measured (the webhook loss estimate, the last webhook), shared by
                    -- replicas and kept across restarts.
                    CREATE TABLE deployment_state (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL, updated_at INTEGER NOT NULL);
                    -- One bad row never blocks a queue: a delivery or a notification that failed waits
                    -- its own backoff while the others go on.
                    ALTER TABLE webhook_inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE webhook_inbox ADD COLUMN not_before INTEGER;
                    ALTER TABLE notifications ADD COLUMN not_before INTEGER;
                    -- An analytics-ready webhook that arrived while the job's call was in flight.
                    ALTER TABLE analytics_jobs ADD COLUMN ready_announced INTEGER NOT NULL DEFAULT 0;
                    -- A deleted Book keeps finished_at only when its generation's analytics were
                    -- retrieved (a revival with the same documents is then that generation still).
                    UPDATE books SET finished_at = NULL WHERE state = 'deleted' AND NOT EXISTS (
                        SELECT 1 FROM analytics_jobs j WHERE j.book_uuid = books.uuid AND j.generation = books.generation AND j.state = 'complete');
                    """
            )
        }
        migrator.registerMigration("v9-inbox-hint") { db in
            // The hint admission decoded, so the watcher does not decode the body again.
            try db.execute(sql: "ALTER TABLE webhook_inbox ADD COLUMN hint TEXT")
        }
        migrator.registerMigration("v10-finish-evidence") { db in
            // Whether a book-level finished event announced the generation's finish (the loss
            // estimate's evidence where no document events are received): StoredBook.finishEvidence.
            try db.execute(sql: "ALTER TABLE books ADD COLUMN finish_evidence INTEGER")
        }
        migrator.registerMigration("v11-book-labels") { db in
            // The operator's label and Ocrolus's name of a Book (BookLabels), apart from the
            // machine's row; `status --label` filters on the label.
            try db.execute(
                sql: """
                    CREATE TABLE book_labels (book_uuid TEXT PRIMARY KEY, label TEXT, name TEXT);
                    CREATE INDEX book_labels_label ON book_labels(label) WHERE label IS NOT NULL;
                    """
            )
        }
        migrator.registerMigration("v12-analytics-pages") { db in
            // The pages of a paged endpoint (enriched_txns) fetched so far, each stored under the
            // job's claim as it arrives; deleted when the whole result is stored.
            try db.execute(
                sql: """
                    CREATE TABLE analytics_pages (
                        book_uuid TEXT NOT NULL,
                        generation INTEGER NOT NULL,
                        endpoint TEXT NOT NULL,
                        page_offset INTEGER NOT NULL,
                        body BLOB NOT NULL,
                        retrieved_at INTEGER NOT NULL,
                        PRIMARY KEY (book_uuid, generation, endpoint, page_offset)
                    ) WITHOUT ROWID
                    """
            )
        }
        migrator.registerMigration("v13-rate-budget") { db in
            // The deployment's shared Ocrolus rate budget (used by replicas on PostgreSQL; a
            // single node keeps its in-process limiter): one GCRA row, and each waiting
            // replica's demand.
            try db.execute(
                sql:
                    "CREATE TABLE rate_budget (id INTEGER PRIMARY KEY, tat INTEGER NOT NULL, paused_until INTEGER NOT NULL, slow_until INTEGER NOT NULL)"
            )
            try db.execute(
                sql:
                    "CREATE TABLE rate_demand (owner TEXT PRIMARY KEY, priority_rank INTEGER NOT NULL, since INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID"
            )
        }
        // An index cannot break a foreign key: no full `foreign_key_check` of the documents
        // table under the write lock (about a million rows at 100k Books).
        migrator.registerMigration("v14-tracked-state-index", foreignKeyChecks: .immediate) { db in
            // The tracked Books by state, from the index alone: the scrape's and `status`'s
            // totals and the outage detector's processing count read every tracked Book's row
            // for `untracked_at` through `books_state` before (164 ms a scrape at 100k Books).
            try db.execute(sql: "CREATE INDEX books_tracked_state ON books(state) WHERE untracked_at IS NULL")
        }
        migrator.registerMigration("v15-polled-state-index", foreignKeyChecks: .immediate) { db in
            // The finished Books with a retention poll (`polledCounts`, every 10 s), from the
            // index alone: through `books_tracked_state` the count would read the row of every
            // finished Book ever tracked for its `next_poll_at`.
            try db.execute(sql: "CREATE INDEX books_polled_state ON books(state) WHERE untracked_at IS NULL AND next_poll_at IS NOT NULL")
        }
        return migrator
    }
}
