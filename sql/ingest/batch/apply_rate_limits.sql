CREATE OR REPLACE FUNCTION tally.apply_rate_limits(items tally.ingest_item[], state tally.ingest_state[])
RETURNS tally.ingest_state[]
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Step 2 of log_events, for a batch with an element subject to a rate limit: the batch's hits are
 * added to its counters in one upsert, in key order (which locks the rows, new or not, until commit),
 * and what was stored before is the total less them. An element is over when the stored hits plus
 * those of the batch's elements up to it pass the limit. An element whose event_id an earlier element
 * claimed is a duplicate and counts no hit, and the claim depends on that earlier element's rate
 * limit: so the outcomes are decided in rounds until nothing changes (once, unless a batch repeats an
 * event_id after a refused element). When no counter passes its limit with all of the batch's hits,
 * nothing is over and the rounds are skipped. Every element that reached the limits counts a hit,
 * refused or not, as in log_event; the refusals are added to tally.rate_limit_rejections.
 * Returns the batch's state with the outcomes (rate_limited, or duplicate for an event_id that changed
 * hands) and each element's ip_over / user_over.
 */
#variable_conflict use_column
DECLARE
    v_state tally.ingest_state [] := apply_rate_limits.state;
    v_keys uuid [];
    v_windows timestamptz [];
    v_stored integer [];
    v_added integer [];
    v_changed boolean;
    v_over boolean;
    v_rounds integer := 0;
BEGIN
    WITH n AS (
        SELECT h.key AS hash, h.window_start AS rate_window, h.hits, h.max_hits
        FROM tally.limit_counters(apply_rate_limits.items, v_state) AS h
    ),
    counted AS (
        INSERT INTO tally.rate_limit_state AS s (key, window_start, hits)
        SELECT n.hash, n.rate_window, n.hits FROM n ORDER BY n.hash, n.rate_window
        ON CONFLICT (key, window_start) DO UPDATE SET hits = s.hits + excluded.hits
        RETURNING s.key, s.window_start, s.hits
    )
    SELECT
        array_agg(c.key), array_agg(c.window_start), array_agg(c.hits - n.hits), array_agg(n.hits),
        coalesce(bool_or(c.hits > n.max_hits), false)
    INTO v_keys, v_windows, v_stored, v_added, v_over
    FROM counted AS c INNER JOIN n ON n.hash = c.key AND n.rate_window = c.window_start;

    -- No element can be over a limit that no counter passes with all of the batch's hits counted: the
    -- first estimate then stands (nobody is refused, so no event_id changes hands), and so do the hits
    -- added. That is the common case, and it skips the rounds.
    IF v_over THEN
        LOOP
            v_rounds := v_rounds + 1;
            SELECT
                array_agg(
                    row(
                        CASE
                            WHEN z.error IS NOT NULL THEN NULL
                            WHEN z.seen OR z.earlier_claims THEN 'duplicate'
                            WHEN z.bot THEN 'discarded_bot'
                            WHEN z.ip_over OR z.user_over THEN 'rate_limited'
                        END,
                        z.next_reach, z.ip_over, z.user_over, NULL, z.stored_agent, z.stored_visitor, NULL
                    )::tally.ingest_state
                    ORDER BY z.ord
                ),
                bool_or(z.next_reach IS DISTINCT FROM z.reach)
            INTO v_state, v_changed
            FROM (
                SELECT
                    y.*,
                    y.error IS NULL AND NOT y.seen AND NOT y.bot AND NOT y.earlier_claims AS next_reach
                FROM (
                    SELECT
                        c.*,
                        coalesce(
                            bool_or(c.reach AND NOT c.ip_over AND NOT c.user_over) OVER (
                                PARTITION BY c.event_id, CASE WHEN c.event_id IS NULL THEN c.ord END
                                ORDER BY c.ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                            ),
                            false
                        ) AS earlier_claims
                    FROM (
                        SELECT
                            r.ord, r.error, r.seen, r.bot, r.event_id, r.reach, r.stored_agent, r.stored_visitor,
                            coalesce(
                                r.reach AND r.ip_hash IS NOT NULL AND r.ip_limit < coalesce(ib.hits, 0) + count(*) FILTER (WHERE r.reach) OVER (
                                    PARTITION BY r.ip_hash, r.rate_window ORDER BY r.ord
                                ),
                                false
                            ) AS ip_over,
                            coalesce(
                                r.reach AND r.user_hash IS NOT NULL AND r.user_limit < coalesce(ub.hits, 0) + count(*) FILTER (WHERE r.reach) OVER (
                                    PARTITION BY r.user_hash, r.rate_window ORDER BY r.ord
                                ),
                                false
                            ) AS user_over
                        FROM ROWS FROM (unnest(apply_rate_limits.items), unnest(v_state)) AS r
                        LEFT JOIN unnest(v_keys, v_windows, v_stored) AS ib (key, window_start, hits)
                            ON ib.key = r.ip_hash AND ib.window_start = r.rate_window
                        LEFT JOIN unnest(v_keys, v_windows, v_stored) AS ub (key, window_start, hits)
                            ON ub.key = r.user_hash AND ub.window_start = r.rate_window
                    ) AS c
                ) AS y
            ) AS z;
            EXIT WHEN NOT v_changed;
        END LOOP;

        -- Every element that reached the limits counts a hit, refused or not (as in log_event): a later
        -- round may have let more of them reach than the first estimate counted.
        IF v_rounds > 1 THEN
            UPDATE tally.rate_limit_state AS s SET hits = s.hits + n.hits - a.hits
            FROM tally.limit_counters(apply_rate_limits.items, v_state) AS n
            INNER JOIN unnest(v_keys, v_windows, v_added) AS a (key, window_start, hits)
                ON a.key = n.key AND a.window_start = n.window_start
            WHERE s.key = n.key AND s.window_start = n.window_start AND n.hits <> a.hits;
        END IF;

        INSERT INTO tally.rate_limit_rejections AS j (window_start, key, kind, rejected)
        SELECT r.rate_window, o.key, r.kind, count(*)
        FROM ROWS FROM (unnest(apply_rate_limits.items), unnest(v_state)) AS r
        CROSS JOIN LATERAL (VALUES ('ip:' || r.ip_key, r.ip_over), ('user:' || r.user_id, r.user_over)) AS o (key, over)
        WHERE r.outcome = 'rate_limited' AND o.over
        GROUP BY r.rate_window, o.key, r.kind
        ORDER BY r.rate_window, o.key COLLATE "C", r.kind
        ON CONFLICT (window_start, key, kind) DO UPDATE SET rejected = j.rejected + excluded.rejected;
    END IF;
    RETURN v_state;
END
$$;

COMMENT ON FUNCTION tally.apply_rate_limits(tally.ingest_item[], tally.ingest_state[]) IS
'Step 2 of log_events: adds the batch''s hits to its rate-limit counters and decides which elements are over; '
'returns the batch''s state with those outcomes.';
