-- Batch ingestion: tally.log_events(jsonb) validates, rate-limits, debounces and stores a whole array
-- of events in a handful of set-based statements (sql/ingest/log_events.sql).

ALTER TABLE tally.settings
ADD COLUMN batch_max integer NOT NULL DEFAULT 1000 CHECK (batch_max BETWEEN 1 AND 10000);

COMMENT ON COLUMN tally.settings.batch_max IS
'log_events() refuses a batch of more elements than this (SQLSTATE 22023): it bounds the memory and lock span '
'of one call. At most 10,000.';

-- Rows that log_events() has already validated (target, visibility, debounce) carry a token the
-- admit_event trigger recognises, so that it does not probe and claim them a second time, one row at
-- a time. The token is random per statement and lives in a transaction-local setting only while that
-- INSERT runs, after every host-table probe: host code cannot learn it, and a row with any other
-- value is validated as usual. The trigger clears the column: it is never stored.
ALTER TABLE tally.events ADD COLUMN vouched uuid;

COMMENT ON COLUMN tally.events.vouched IS
'Transient: the token by which log_events() vouches for a row it validated itself. Cleared by the admit_event '
'trigger; always NULL when stored.';

-- One element of a batch as log_events() reads it (fixed after its first query), and what the
-- later statements decide about it (rebuilt by each).
CREATE TYPE tally.ingest_item AS (
    ord integer,
    error text,
    message text,
    at timestamptz,
    target_type text,
    target_id text,
    kind text,
    user_id text,
    ip inet,
    ip_key text,
    user_agent text,
    agent_id integer,
    agent_used date,
    bot boolean,
    referrer text,
    metadata jsonb,
    event_id uuid,
    seen boolean,
    identity text,
    visitor uuid,
    previous uuid,
    rate_window timestamptz,
    ip_hash uuid,
    user_hash uuid,
    ip_limit integer,
    user_limit integer,
    debounce interval
);

CREATE TYPE tally.ingest_state AS (
    outcome tally.outcome,
    reach boolean,
    ip_over boolean,
    user_over boolean,
    canonical_id text,
    stored_agent integer,
    stored_visitor uuid,
    first_visit boolean
);

COMMENT ON TYPE tally.ingest_item IS
'Internal: one element of a log_events() batch as read by its first query (fields, guard keys).';
COMMENT ON TYPE tally.ingest_state IS
'Internal: what log_events() has decided so far about one element of its batch.';

ALTER TYPE tally.ingest_item OWNER TO tally_owner;
ALTER TYPE tally.ingest_state OWNER TO tally_owner;
