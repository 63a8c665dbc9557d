CREATE OR REPLACE FUNCTION tally.probe_batch(items tally.ingest_item[], state tally.ingest_state[])
RETURNS TABLE (ord integer, canonical_id text, visible boolean)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Step 3 of log_events: the canonical id and visibility of each element still going, from its host
 * table, one tally_host.probe_many() call (one join) per target type in the batch, as
 * tally_host_access. NULL canonical_id: no such target.
 */
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT g.ords[p.ord]::integer, p.canonical_id, p.visible
    FROM (
        SELECT
            r.target_type,
            array_agg(r.ord ORDER BY r.ord) AS ords,
            array_agg(r.target_id ORDER BY r.ord) AS ids,
            array_agg(r.user_id ORDER BY r.ord) AS user_ids
        FROM ROWS FROM (unnest(probe_batch.items), unnest(probe_batch.state)) AS r
        WHERE r.error IS NULL AND r.outcome IS NULL
        GROUP BY r.target_type
    ) AS g
    CROSS JOIN LATERAL tally_host.probe_many(g.target_type, g.ids, g.user_ids) AS p;
END
$$;

COMMENT ON FUNCTION tally.probe_batch(tally.ingest_item[], tally.ingest_state[]) IS
'Step 3 of log_events: canonical id and visibility of the elements still going, one host query per type.';
