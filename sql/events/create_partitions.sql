CREATE OR REPLACE FUNCTION tally.create_partitions(
    since date DEFAULT null,
    ahead integer DEFAULT null
)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- Months and bounds are UTC whatever the caller's TimeZone: bounds made in another zone would
-- overlap the UTC ones (and a date literal becomes a timestamptz in the session's zone).
SET timezone = 'UTC'
AS $$
/*
 * Creates the monthly (UTC) partitions of tally.events from the month of `since` (default: last
 * month) up to `ahead` months past the current month (default settings.partitions_ahead). Rows that already sit in the default
 * partition for a new month are moved into it, so nothing is lost when a partition arrives late.
 * Returns how many partitions were created; when tally.events is held by an open transaction, it
 * stops early with a WARNING (tally.lock_briefly). SECURITY DEFINER so that partitions always belong to
 * tally_owner (housekeeping, which runs as tally_owner, must be able to drop them).
 */
DECLARE
    v_ahead integer;
    v_month date;
    v_last date;
    v_name text;
    v_created integer := 0;
BEGIN
    SELECT coalesce(ahead, s.partitions_ahead) INTO v_ahead FROM tally.settings AS s;
    v_month := date_trunc('month', coalesce(since, (tally.now() - interval '1 month')::date))::date;
    v_last := (date_trunc('month', tally.now()) + make_interval(months => v_ahead))::date;
    WHILE v_month <= v_last LOOP
        v_name := 'events_p' || to_char(v_month, 'YYYY_MM');
        IF to_regclass(format('tally.%I', v_name)) IS NULL THEN
            -- Lock out inserts while rows move from the default partition, then attach (which takes
            -- the default partition alone, and checks that it holds nothing of this month any more).
            -- Taken only when a partition is missing (it stops ingestion to the end of the
            -- transaction), never queued for long (tally.lock_briefly): behind a transaction left
            -- open, the months wait for the next run, and their events for the default partition,
            -- which loses nothing. The lock makes concurrent callers (housekeeping, tally migrate)
            -- take turns: the name is looked up again under it, as the one before may have made it.
            IF NOT tally.lock_briefly(
                ARRAY['tally.events', 'tally.events_default']::regclass[],
                ARRAY['SHARE ROW EXCLUSIVE', 'ACCESS EXCLUSIVE']
            ) THEN
                RAISE WARNING USING
                    MESSAGE = format('partition %s of tally.events not created: the table is busy', v_name),
                    HINT = 'a transaction holds it open; the next housekeeping run tries again';
                RETURN v_created;
            END IF;
        END IF;
        IF to_regclass(format('tally.%I', v_name)) IS NULL THEN
            EXECUTE format('CREATE TABLE tally.%I (LIKE tally.events INCLUDING DEFAULTS)', v_name);
            EXECUTE format(
                'WITH moved AS (DELETE FROM tally.events_default AS d'
                ' WHERE d.created_at >= $1 AND d.created_at < $2 RETURNING d.*)'
                ' INSERT INTO tally.%I OVERRIDING SYSTEM VALUE SELECT * FROM moved', v_name
            ) USING v_month, (v_month + interval '1 month');
            EXECUTE format(
                'ALTER TABLE tally.events ATTACH PARTITION tally.%I FOR VALUES FROM (%L) TO (%L)',
                v_name, v_month, (v_month + interval '1 month')::date
            );
            v_created := v_created + 1;
        END IF;
        v_month := (v_month + interval '1 month')::date;
    END LOOP;
    RETURN v_created;
END
$$;

COMMENT ON FUNCTION tally.create_partitions(date, integer) IS
'Creates monthly (UTC) partitions of tally.events from the month of since (default last month) to ahead months past '
'this one (default settings.partitions_ahead), moving any rows of those months out of the default partition.';
