-- The earlier step, which returned rows that log_events joined back to the batch.
DROP FUNCTION IF EXISTS tally.probe_batch(tally.ingest_item[], tally.ingest_state[]);

CREATE OR REPLACE FUNCTION tally.probe_targets(items tally.ingest_item[], state tally.ingest_state[])
RETURNS tally.ingest_state[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Step 3 of log_events: the canonical id of each element still going, and its outcome when its target
 * is missing or not visible to its user, from its host table: one tally_host.probe_many() call (one
 * join) per target type in the batch, as tally_host_access.
 */
#variable_conflict use_column
DECLARE
    v_state tally.ingest_state [];
BEGIN
    SELECT array_agg(
        row(
            CASE
                WHEN r.error IS NOT NULL OR r.outcome IS NOT NULL THEN r.outcome
                WHEN probed.canonical_id IS NULL THEN 'discarded_missing_target'
                WHEN NOT probed.visible THEN 'discarded_not_visible'
            END,
            r.reach, r.ip_over, r.user_over, probed.canonical_id, r.stored_agent, r.stored_visitor, NULL
        )::tally.ingest_state
        ORDER BY r.ord
    )
    INTO v_state
    FROM ROWS FROM (unnest(probe_targets.items), unnest(probe_targets.state)) AS r
    LEFT JOIN (
        -- Positions in the type's arrays back to the elements' ords.
        SELECT g.ords[p.ord]::integer AS ord, p.canonical_id, p.visible
        FROM (
            SELECT
                e.target_type,
                array_agg(e.ord ORDER BY e.ord) AS ords,
                array_agg(e.target_id ORDER BY e.ord) AS ids,
                array_agg(e.user_id ORDER BY e.ord) AS user_ids
            FROM ROWS FROM (unnest(probe_targets.items), unnest(probe_targets.state)) AS e
            WHERE e.error IS NULL AND e.outcome IS NULL
            GROUP BY e.target_type
        ) AS g
        CROSS JOIN LATERAL tally_host.probe_many(g.target_type, g.ids, g.user_ids) AS p
    ) AS probed ON probed.ord = r.ord;
    RETURN v_state;
END
$$;

COMMENT ON FUNCTION tally.probe_targets(tally.ingest_item[], tally.ingest_state[]) IS
'Step 3 of log_events: canonical id and visibility of the elements still going, one host query per type; '
'returns the batch''s state with missing and invisible targets discarded.';
