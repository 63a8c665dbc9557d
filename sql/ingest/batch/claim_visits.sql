CREATE OR REPLACE FUNCTION tally.claim_visits(
    items tally.ingest_item[], state tally.ingest_state[], at timestamptz
)
RETURNS tally.ingest_state[]
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Step 4 of log_events: claim_visit for the whole batch. Every element shares one clock reading, so
 * of the elements with the same debounce slot (target, kind, visitor key) only the first can count:
 * it claims the slot as claim_visit would (yesterday's slot first, near midnight), and every later
 * one is debounced, whatever became of the first (an admission sets last_at to this very instant,
 * and a refusal means the slot is already inside its window). A claim that creates today's slot
 * marks a first visit.
 *
 * The window is a condition of each upsert, so the slots are claimed per window length (usually
 * one): all previous-day slots first, then all of today's, each in (window, key) order, the order
 * every claim_visit call follows too.
 */
#variable_conflict use_column
DECLARE
    v_state tally.ingest_state [] := claim_visits.state;
    v_ords integer [];
    v_keys uuid [];
    v_previous uuid [];
    v_windows interval [];
    v_first boolean [];
    v_window interval;
    v_debounced uuid [] := '{}';
    v_claimed uuid [] := '{}';
    v_created uuid [] := '{}';
    v_found uuid [];
    v_new uuid [];
BEGIN
    -- A visitor key needs today's salt; when no job has made it yet, the batch makes it, once.
    IF EXISTS (
        SELECT 1 FROM ROWS FROM (unnest(claim_visits.items), unnest(v_state)) AS r
        WHERE r.error IS NULL AND r.outcome IS NULL AND r.identity IS NOT NULL AND r.stored_visitor IS NULL
    ) THEN
        SELECT array_agg(
            row(
                r.outcome, r.reach, r.ip_over, r.user_over, r.canonical_id, r.stored_agent,
                coalesce(r.stored_visitor, tally.visitor_key(s.inner_pad, s.outer_pad, r.identity)), r.first_visit
            )::tally.ingest_state
            ORDER BY r.ord
        )
        INTO v_state
        FROM ROWS FROM (unnest(claim_visits.items), unnest(v_state)) AS r
        CROSS JOIN tally.visitor_salt((claim_visits.at AT TIME ZONE 'UTC')::date) AS s;
    END IF;

    -- Each element that has a slot: its key, yesterday's key (near midnight), its window, and
    -- whether it is the first of its slot in the batch.
    SELECT
        array_agg(s.ord ORDER BY s.ord), array_agg(s.key ORDER BY s.ord), array_agg(s.previous ORDER BY s.ord),
        array_agg(s.debounce ORDER BY s.ord), array_agg(s.first ORDER BY s.ord)
    INTO v_ords, v_keys, v_previous, v_windows, v_first
    FROM (
        SELECT
            r.ord,
            k.key,
            CASE WHEN r.previous IS NOT NULL
                THEN tally.debounce_key(r.target_type, r.canonical_id, r.kind, r.previous)
            END AS previous,
            r.debounce,
            row_number() OVER (PARTITION BY k.key ORDER BY r.ord) = 1 AS first
        FROM ROWS FROM (unnest(claim_visits.items), unnest(v_state)) AS r
        CROSS JOIN LATERAL (
            SELECT tally.debounce_key(r.target_type, r.canonical_id, r.kind, r.stored_visitor) AS key
        ) AS k
        WHERE r.error IS NULL AND r.outcome IS NULL AND r.stored_visitor IS NOT NULL AND r.debounce > interval '0'
    ) AS s;
    IF v_ords IS NULL THEN
        RETURN v_state;
    END IF;

    FOR v_window IN
        SELECT DISTINCT x.debounce FROM unnest(v_windows, v_previous) AS x (debounce, previous)
        WHERE x.previous IS NOT NULL ORDER BY x.debounce
    LOOP
        WITH slots AS (
            SELECT x.previous AS key
            FROM unnest(v_previous, v_windows, v_first) AS x (previous, debounce, first)
            WHERE x.first AND x.previous IS NOT NULL AND x.debounce = v_window
        ),
        claimed AS (
            INSERT INTO tally.debounce AS d (key, last_at)
            SELECT slots.key, claim_visits.at FROM slots ORDER BY slots.key
            ON CONFLICT (key) DO UPDATE SET last_at = excluded.last_at
            WHERE d.last_at <= excluded.last_at - v_window
            RETURNING d.key
        )
        SELECT array_agg(slots.key) INTO v_found
        FROM slots WHERE slots.key NOT IN (SELECT claimed.key FROM claimed);
        v_debounced := v_debounced || coalesce(v_found, '{}');
    END LOOP;

    FOR v_window IN SELECT DISTINCT x.debounce FROM unnest(v_windows) AS x (debounce) ORDER BY x.debounce LOOP
        -- The first element of each slot, unless yesterday's slot already debounced it.
        WITH claimed AS (
            INSERT INTO tally.debounce AS d (key, last_at)
            SELECT x.key, claim_visits.at
            FROM unnest(v_keys, v_previous, v_windows, v_first) AS x (key, previous, debounce, first)
            WHERE x.first AND x.debounce = v_window
                AND (x.previous IS NULL OR x.previous NOT IN (SELECT unnest(v_debounced)))
            ORDER BY x.key
            ON CONFLICT (key) DO UPDATE SET last_at = excluded.last_at
            WHERE d.last_at <= excluded.last_at - v_window
            RETURNING d.key, d.xmax = 0 AS created
        )
        SELECT array_agg(c.key), array_agg(c.key) FILTER (WHERE c.created) INTO v_found, v_new FROM claimed AS c;
        v_claimed := v_claimed || coalesce(v_found, '{}');
        v_created := v_created || coalesce(v_new, '{}');
    END LOOP;

    SELECT array_agg(
        row(
            CASE WHEN x.ord IS NULL OR (x.first AND x.key IN (SELECT unnest(v_claimed))) THEN r.outcome
                ELSE 'debounced'
            END,
            r.reach, r.ip_over, r.user_over, r.canonical_id, r.stored_agent, r.stored_visitor,
            CASE WHEN x.first AND x.key IN (SELECT unnest(v_created)) THEN true END
        )::tally.ingest_state
        ORDER BY r.ord
    )
    INTO v_state
    FROM ROWS FROM (unnest(claim_visits.items), unnest(v_state)) AS r
    LEFT JOIN unnest(v_ords, v_keys, v_first) AS x (ord, key, first) ON x.ord = r.ord;
    RETURN v_state;
END
$$;

COMMENT ON FUNCTION tally.claim_visits(tally.ingest_item[], tally.ingest_state[], timestamptz) IS
'Step 4 of log_events: debounce claims for the elements still going (first per slot claims, later ones are '
'debounced) and their first-visit marks.';
