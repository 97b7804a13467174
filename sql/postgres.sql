-- Every table alm-webhooks owns on PostgreSQL: the store's
-- (`store::PostgresStore`) and the inbox's (`inbox::PostgresInbox`).
--
-- `PostgresStore::migrate(url, schema)` (or `PostgresInbox::migrate`, the
-- same) runs this file, idempotently, in one
-- transaction under an advisory lock, after `CREATE SCHEMA IF NOT EXISTS` and
-- `SET LOCAL search_path TO <schema>`. To run it yourself (a migration tool,
-- a DBA), do the same: for example
--
--   psql "$OWNER_URL" -v ON_ERROR_STOP=1 \
--     -c 'CREATE SCHEMA IF NOT EXISTS webhooks' \
--     -c 'SET search_path TO webhooks' -f sql/postgres.sql
--
-- and give the receiver's role only what it needs at run time:
--
--   GRANT USAGE ON SCHEMA webhooks TO receiver;
--   GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA webhooks TO receiver;
--
-- (The inbox's ids are identity columns, which need no grant on their
-- sequence. Inbox tables created by an older release, at connect, used
-- BIGSERIAL: for those, also
-- `GRANT USAGE ON ALL SEQUENCES IN SCHEMA webhooks TO receiver`. The
-- learner projection, when on, draws its change feed's cursor from the
-- sequence `alm_learner_records_seq_source`: then also
-- `GRANT USAGE ON SEQUENCE webhooks.alm_learner_records_seq_source TO receiver`.)
--
-- `PostgresStore::connect` and `PostgresInbox::connect` then only check that
-- these tables are there.

-- One row per event: a claim (status 0) or a decided event (status 1).
CREATE TABLE IF NOT EXISTS alm_events (
    account_id BIGINT      NOT NULL,  -- the u64 account id, bit-cast to i64
    event_id   TEXT        NOT NULL,  -- the eventId's storage_key()
    status     SMALLINT    NOT NULL,  -- 0 claimed, 1 decided
    token      BYTEA,                 -- the claim token (16 bytes), NULL once decided
    expires_at TIMESTAMPTZ NOT NULL,  -- lease end (claimed) or end of the dedup window (decided)
    PRIMARY KEY (account_id, event_id)
);
CREATE INDEX IF NOT EXISTS alm_events_expires_at ON alm_events (expires_at);

-- One row per entity (a learner record, a learning object, an instance).
CREATE TABLE IF NOT EXISTS alm_states (
    state_key  TEXT        PRIMARY KEY, -- storage_key() of the StateKey, e.g. learner/1234/7/course:1_2
    version    BIGINT      NOT NULL,    -- incremented by every committed change
    state      JSONB       NOT NULL,    -- the EntityState as JSON
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS alm_states_expires_at ON alm_states (expires_at);

-- The learner projection (`PostgresStore::with_learner_projection`): one row
-- per learner record, written in the transaction that commits the engine's
-- decisions. See docs/learner-table.md for what each column holds and how
-- to query it. Unused (and empty) unless the projection is on.
CREATE TABLE IF NOT EXISTS alm_learner_records (
    account_id        BIGINT           NOT NULL,
    user_id           BIGINT           NOT NULL,
    lo_instance_id    TEXT             NOT NULL, -- canonical: learningProgram: for both spellings
    lo_id             TEXT             NOT NULL,
    lo_type           TEXT             NOT NULL, -- course | learningProgram | certification | …
    status            TEXT             NOT NULL, -- enrolled | in_progress | completed | unenrolled
    progress_percent  DOUBLE PRECISION NOT NULL,
    date_enrolled     TIMESTAMPTZ,
    date_started      TIMESTAMPTZ,
    date_completed    TIMESTAMPTZ,
    has_passed        BOOLEAN,
    enrollment_source TEXT,
    last_event_id     TEXT             NOT NULL,
    last_event_name   TEXT             NOT NULL,
    last_event_time   TIMESTAMPTZ      NOT NULL,
    updated_at        TIMESTAMPTZ      NOT NULL,
    seq               BIGINT           NOT NULL, -- the change feed's cursor
    merge_state       TEXT             NOT NULL, -- the winning event of each field (JSON)
    PRIMARY KEY (account_id, user_id, lo_instance_id)
);
CREATE INDEX IF NOT EXISTS alm_learner_records_instance ON alm_learner_records (account_id, lo_instance_id, user_id);
CREATE INDEX IF NOT EXISTS alm_learner_records_seq ON alm_learner_records (seq);
CREATE SEQUENCE IF NOT EXISTS alm_learner_records_seq_source;

-- The outbox (`PostgresStore::with_outbox`): one row per processed event,
-- written in the transaction that commits the engine's decisions, deleted
-- by the relay once a broker acknowledged it. See docs/forwarding.md.
-- Unused (and empty) unless forwarding is on.
CREATE TABLE IF NOT EXISTS alm_outbox (
    account_id BIGINT      NOT NULL,
    seq        BIGINT      NOT NULL, -- the account's decision order: 1, 2, 3… without gaps
    event_id   TEXT        NOT NULL,
    event_name TEXT        NOT NULL,
    event_time TIMESTAMPTZ,          -- the event's timestamp
    body       BYTEA       NOT NULL, -- the event's JSON as ALM sent it
    decided_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (account_id, seq)
);
-- Each account's next number (its row is locked by a commit until the
-- commit ends: an account's commits are numbered in the order they are made).
CREATE TABLE IF NOT EXISTS alm_outbox_accounts (
    account_id BIGINT PRIMARY KEY,
    next_seq   BIGINT NOT NULL
);
-- Which relay publishes an account's entries, until when (the database's clock).
CREATE TABLE IF NOT EXISTS alm_outbox_relays (
    account_id  BIGINT      PRIMARY KEY,
    relay       TEXT        NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);

-- The inbox (`inbox::PostgresInbox`): one row per delivery acknowledged and
-- not yet completed.
CREATE TABLE IF NOT EXISTS alm_inbox (
    id          BIGINT      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    account_id  BIGINT      NOT NULL,  -- the u64 account id, bit-cast to i64
    body        BYTEA       NOT NULL,  -- the delivery's exact bytes
    received_at TIMESTAMPTZ NOT NULL,
    attempts    INTEGER     NOT NULL DEFAULT 0,  -- attempts taken (counted at take)
    abandoned   INTEGER     NOT NULL DEFAULT 0,  -- of those, how many ran out their lease (crash, hang)
    last_error  BYTEA,                 -- UTF-8 text (BYTEA: TEXT cannot hold NUL)
    not_before  TIMESTAMPTZ,           -- waiting for a retry until then
    lease_token BYTEA,                 -- the worker holding it (16 bytes)
    lease_until TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS alm_inbox_account ON alm_inbox (account_id, id);

-- Events whose handler kept failing, kept to list, replay or discard.
CREATE TABLE IF NOT EXISTS alm_dead_letters (
    id         BIGINT      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    account_id BIGINT      NOT NULL,
    event_id   BYTEA,                 -- UTF-8 texts as sent: BYTEA, since TEXT
    event_name BYTEA,                 -- cannot hold the NUL a malformed event may
    event      BYTEA       NOT NULL,  -- the event's JSON
    error      BYTEA       NOT NULL,
    attempts   INTEGER     NOT NULL,
    at         TIMESTAMPTZ NOT NULL
);
-- What is kept of one account is counted through it (the per-account caps).
CREATE INDEX IF NOT EXISTS alm_dead_letters_account ON alm_dead_letters (account_id);

-- Bodies that will never parse, kept with their bytes and the error.
CREATE TABLE IF NOT EXISTS alm_quarantine (
    id          BIGINT      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    account_id  BIGINT,
    body        BYTEA       NOT NULL,
    error       BYTEA       NOT NULL,  -- UTF-8 text
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS alm_quarantine_account ON alm_quarantine (account_id);

-- Accounts whose deliveries wait until resumed (one row each, `every` false),
-- and every account (`every` true, `account_id` 0).
CREATE TABLE IF NOT EXISTS alm_inbox_paused (
    every      BOOLEAN     NOT NULL,
    account_id BIGINT      NOT NULL,
    since      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (every, account_id)
);

-- The archive (`inbox::PostgresInbox`): each completed delivery's exact
-- bytes, moved from alm_inbox by the statement that completes it, kept for
-- ALM_ARCHIVE_DAYS (swept by the workers in bounded steps), and one row per
-- event with what was decided, indexed for the search by event id, learner
-- and instance (each with the time received, for a time range).
CREATE TABLE IF NOT EXISTS alm_archive (
    id          BIGINT      PRIMARY KEY,  -- the delivery's id in alm_inbox
    account_id  BIGINT      NOT NULL,
    body        BYTEA       NOT NULL,     -- the delivery's exact bytes
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS alm_archive_received ON alm_archive (received_at, id);
CREATE TABLE IF NOT EXISTS alm_archive_events (
    archive_id     BIGINT      NOT NULL,  -- alm_archive.id
    idx            INTEGER     NOT NULL,  -- the event's position in the delivery
    account_id     BIGINT      NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL,
    event_id       BYTEA,                 -- UTF-8 texts as sent (BYTEA: NUL)
    event_name     BYTEA,
    user_id        BIGINT,
    lo_instance_id BYTEA,                 -- canonical spelling
    happened_at    TIMESTAMPTZ,           -- the event's `timestamp`
    decision       TEXT        NOT NULL,
    reason         TEXT,
    attempts       INTEGER     NOT NULL,
    error          BYTEA,
    PRIMARY KEY (archive_id, idx)
);
CREATE INDEX IF NOT EXISTS alm_archive_events_event_id
    ON alm_archive_events (event_id, received_at) WHERE event_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS alm_archive_events_user
    ON alm_archive_events (user_id, received_at) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS alm_archive_events_instance
    ON alm_archive_events (lo_instance_id, received_at) WHERE lo_instance_id IS NOT NULL;

-- Tables of an earlier release: the `abandoned` column, and the texts above
-- as UTF-8 `BYTEA` (rewrites those tables once).
ALTER TABLE alm_inbox ADD COLUMN IF NOT EXISTS abandoned INTEGER NOT NULL DEFAULT 0;
DO $$ DECLARE c record; BEGIN
  FOR c IN SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = current_schema() AND data_type = 'text' AND (
      (table_name = 'alm_dead_letters'
         AND column_name IN ('event_id', 'event_name', 'event', 'error'))
      OR (table_name = 'alm_quarantine' AND column_name = 'error')
      OR (table_name = 'alm_inbox' AND column_name = 'last_error'))
  LOOP
    EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN %I TYPE BYTEA USING convert_to(%I, ''UTF8'')',
                   current_schema(), c.table_name, c.column_name, c.column_name);
  END LOOP;
END $$;

-- The learner table's merge state as TEXT (it is JSON the crate writes and
-- reads whole; a JSONB column parsed it on every write, a third of the
-- cost of writing a new record). Tables of an earlier release: rewritten
-- once.
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'alm_learner_records'
      AND column_name = 'merge_state' AND data_type = 'jsonb') THEN
    EXECUTE format('ALTER TABLE %I.alm_learner_records ALTER COLUMN merge_state TYPE TEXT',
                   current_schema());
  END IF;
END $$;

-- Delivery bodies (up to megabytes of JSON each) are compressed with lz4
-- where the server has it (PostgreSQL 14 and later, built with lz4): the
-- append that a `202` waits for spends a few milliseconds compressing a
-- 1.3 MB body with lz4, 10-25 with pglz, the default. alm_archive and
-- alm_quarantine get the same, so a body moved there keeps its
-- compression. Set only where not set yet (the ALTER locks the table);
-- a server without lz4 keeps its default, and so do bodies stored before.
DO $$ DECLARE c record; BEGIN
  IF current_setting('server_version_num')::int >= 140000 THEN
    FOR c IN EXECUTE format(
      'SELECT attrelid::regclass AS tab FROM pg_attribute
         WHERE attrelid IN (%L::regclass, %L::regclass, %L::regclass)
           AND attname = ''body'' AND attcompression IS DISTINCT FROM ''l''',
      format('%I.alm_inbox', current_schema()), format('%I.alm_archive', current_schema()),
      format('%I.alm_quarantine', current_schema()))
    LOOP
      BEGIN
        EXECUTE format('ALTER TABLE %s ALTER COLUMN body SET COMPRESSION lz4', c.tab);
      EXCEPTION WHEN feature_not_supported THEN
        NULL;  -- built without lz4
      END;
    END LOOP;
  END IF;
END $$;
