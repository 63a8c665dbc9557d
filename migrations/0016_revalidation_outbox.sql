-- A durable revalidation feed. NOTIFY alone is lost by a listener that is down during a rollup, and
-- any role that can connect may LISTEN, so tags of private targets were readable by everybody. The
-- rollup now queues its tags here, in its own transaction; NOTIFY only wakes consumers up (its
-- payload is a count, no tag). A consumer takes a batch with FOR UPDATE SKIP LOCKED and deletes it
-- after delivery, in one transaction: a consumer that dies mid-batch leaves it to the next one.

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r WHERE r.rolname = 'tally_consumer') THEN
        BEGIN
            CREATE ROLE tally_consumer NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database's migration created it first
        END;
    END IF;
END
$roles$;

CREATE TABLE tally.revalidation_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queued_at timestamptz NOT NULL DEFAULT now(),
    tag text NOT NULL
);

COMMENT ON TABLE tally.revalidation_outbox IS
'Cache tags queued by the rollup until a consumer acknowledges them (tally.next_tags, tally.ack_tags). '
'Read only through those functions, by members of tally_consumer.';
COMMENT ON COLUMN tally.revalidation_outbox.id IS 'Queue order; what tally.ack_tags() takes.';
COMMENT ON COLUMN tally.revalidation_outbox.queued_at IS
'When the rollup queued it; unacknowledged tags are dropped after settings.outbox_retention.';
COMMENT ON COLUMN tally.revalidation_outbox.tag IS 'target_type:slug of a target whose counters moved.';

ALTER TABLE tally.settings
ADD COLUMN outbox_retention interval NOT NULL DEFAULT '7 days' CHECK (outbox_retention > '0');

COMMENT ON COLUMN tally.settings.outbox_retention IS
'Housekeeping drops cache tags no consumer acknowledged within this (no consumer at all, say); it reports how many.';
