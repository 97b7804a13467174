-- The tables of alm-webhooks' PostgreSQL store (`store::PostgresStore`).
--
-- `PostgresStore::migrate(url, schema)` runs this file, idempotently, in one
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
-- `PostgresStore::connect` then only checks that these tables are there.

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
    merge_state       JSONB            NOT NULL, -- the winning event of each field
    PRIMARY KEY (account_id, user_id, lo_instance_id)
);
CREATE INDEX IF NOT EXISTS alm_learner_records_instance ON alm_learner_records (account_id, lo_instance_id, user_id);
CREATE INDEX IF NOT EXISTS alm_learner_records_seq ON alm_learner_records (seq);
CREATE SEQUENCE IF NOT EXISTS alm_learner_records_seq_source;
