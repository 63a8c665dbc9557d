CREATE OR REPLACE FUNCTION tally.live_counters(target_type text, ids text[])
RETURNS TABLE (
    target_id text,
    slug text,
    views bigint,
    copies bigint,
    downloads bigint,
    uses bigint,
    pending bigint
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * tally.counters_live for the given targets of one type: the host counters, plus the rolled-up
 * counts still waiting for their host row (tally.host_backlog), plus the events not yet rolled up.
 * Exact at the instant of the call. The view reads every host row of the type whatever the WHERE
 * clause (its host rows come from a function, which a filter cannot reach: 50 ms at 100k rows);
 * this probes the host table's key index for each id (tally_host.lookup, as tally_host_access), and
 * the events' txid index for what is not rolled up, so its cost follows the ids given.
 * One row per id that names a target, keyed by its canonical id ('043' finds target 43); an id that
 * names none is left out. Raises 22023 for an unknown type or more than 1,000 ids, and 22P02 for an
 * id that is not of a numeric or uuid key's type.
 * SECURITY DEFINER (owner tally_owner): tally_app reads no raw event.
 */
#variable_conflict use_column
BEGIN
    IF NOT EXISTS (SELECT FROM tally.target_types AS t WHERE t.target_type = live_counters.target_type) THEN
        RAISE EXCEPTION USING
            ERRCODE = '22023',
            MESSAGE = format('unknown target type %s', coalesce(quote_literal(left(live_counters.target_type, 64)), 'NULL'));
    END IF;
    IF cardinality(ids) > 1000 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'at most 1000 ids per call';
    END IF;
    RETURN QUERY
    WITH h AS MATERIALIZED (
        SELECT l.target_id, l.slug, l.views, l.copies, l.downloads, l.uses
        FROM tally_host.lookup(live_counters.target_type, ids) AS l
    ),
    p AS (
        SELECT
            e.target_id,
            count(*) FILTER (WHERE k.counter_column = 'views') AS views,
            count(*) FILTER (WHERE k.counter_column = 'copies') AS copies,
            count(*) FILTER (WHERE k.counter_column = 'downloads') AS downloads,
            count(*) FILTER (WHERE k.counter_column = 'uses') AS uses,
            count(*) AS pending
        FROM tally.events AS e
        INNER JOIN tally.kinds AS k ON k.kind = e.kind
        WHERE e.txid >= (SELECT s.rolled_up_below FROM tally.rollup_state AS s)
            AND NOT tally.counted(e.txid, (SELECT s.snapshot FROM tally.rollup_state AS s))
            AND e.target_type = live_counters.target_type
            AND e.target_id IN (SELECT x.target_id FROM h AS x)
        GROUP BY e.target_id
    )
    SELECT
        h.target_id,
        h.slug,
        h.views + coalesce(b.views, 0) + coalesce(p.views, 0),
        h.copies + coalesce(b.copies, 0) + coalesce(p.copies, 0),
        h.downloads + coalesce(b.downloads, 0) + coalesce(p.downloads, 0),
        h.uses + coalesce(b.uses, 0) + coalesce(p.uses, 0),
        coalesce(p.pending, 0)
    FROM h
    LEFT JOIN tally.host_backlog AS b ON b.target_type = live_counters.target_type AND b.target_id = h.target_id
    LEFT JOIN p ON p.target_id = h.target_id;
END
$$;

COMMENT ON FUNCTION tally.live_counters(text, text[]) IS
'counters_live for the given targets (at most 1000) of one type, by index probes: host counters plus counts not yet '
'in them or not yet rolled up, exact now. For tally_app.';
