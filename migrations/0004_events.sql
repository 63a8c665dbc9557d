-- Raw engagement events, range-partitioned by month on created_at.
--
-- txid is the inserting transaction's top-level id, as bigint so that a BRIN index can hold it
-- (PostgreSQL 15 has no BRIN operator class for xid8). The rollup takes events by txid range below
-- the oldest running transaction (see sql/rollup/rollup.sql), which is exact where an id watermark
-- would lose events whose transaction commits late.
--
-- The table is append-only and carries no btree index: the two BRIN indexes cost a few bytes per
-- thousand rows and nothing per insert, which is most of what keeps log_event cheap.

CREATE TYPE tally.outcome AS ENUM (
    'logged',
    'debounced',
    'rate_limited',
    'duplicate',
    'discarded_missing_target',
    'discarded_not_visible',
    'discarded_bot'
);

COMMENT ON TYPE tally.outcome IS 'What log_event did with a call. Only logged adds an event.';

CREATE TABLE tally.events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    created_at timestamptz NOT NULL,
    txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text)::bigint,
    target_type text NOT NULL,
    target_id text NOT NULL,
    kind text NOT NULL,
    user_id text,
    visitor uuid,
    ip inet,
    user_agent text,
    referrer text,
    metadata jsonb
) PARTITION BY RANGE (created_at);

CREATE TABLE tally.events_default PARTITION OF tally.events DEFAULT;

CREATE INDEX events_txid_brin ON tally.events USING brin (txid) WITH (autosummarize = on);
CREATE INDEX events_created_at_brin ON tally.events USING brin (created_at) WITH (autosummarize = on);

COMMENT ON TABLE tally.events IS
'Raw events (personal data: ip, user_agent). Written only through log_event; read only by the owner.';
COMMENT ON COLUMN tally.events.visitor IS
'Debounce identity: md5 of user_id, else session_id, else ip + user agent; NULL when none was given.';
COMMENT ON COLUMN tally.events.txid IS
'Top-level transaction id of the insert; the rollup''s exactly-once boundary.';
