CREATE OR REPLACE FUNCTION tally.build_target_views()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $build$
/*
 * (Re)creates everything that depends on the target registry, from tally.target_types:
 *   - the tally_host functions, the only code that touches host tables (tally.build_host_access());
 *   - tally.counters_live: counters plus the events not yet rolled up and the rolled-up counts still
 *     waiting for their host row (tally.host_backlog); tally.live_counters() is the same for given ids;
 *   - tally.trending_7d / tally.trending_30d: views of the trending scores of listed targets;
 * then re-applies the grants (tally.apply_grants()), since a rebuilt view has none.
 * Host rows are read only through tally_host.targets(), which runs as tally_host_access.
 * The views are replaced (CREATE OR REPLACE), never dropped: a view or function an application or a
 * DBA built on them, and their grants, survive a registration (DROP VIEW refused with 2BP01, and so
 * failed every registration and every migrate that re-applied this file). Their columns stay as
 * they are; a release that changes them drops the views itself first.
 * Replacing a view takes ACCESS EXCLUSIVE on it, and a lock request that waits holds up every later
 * reader behind it: so a view is made again only if its statement changed (tally.generated_views;
 * registering a type registered already changes none), and the replacements wait at most 50 ms at a
 * time for the views' readers (tally.execute_briefly), then raise 55P03 with nothing changed (a query
 * left running on one of the views for about 5 s). Called by register_target_type() and whenever this file is re-applied.
 * SECURITY DEFINER so that what it creates is always owned by tally_owner, whoever registers a type.
 */
DECLARE
    v_targets text[] := '{}';
    v_union text;
    v_days integer;
    v_names name[] := ARRAY['counters_live'];
    v_views text[];
    v_changed text[];
BEGIN
    -- First, as it takes the registry lock (to the end of the transaction) before it reads anything.
    PERFORM tally.build_host_access();

    SELECT coalesce(array_agg(format(
        'SELECT %L::text AS target_type, h.target_id, h.slug, h.listed, h.views, h.copies, h.downloads, h.uses'
        ' FROM tally_host.targets(%L) AS h',
        t.target_type, t.target_type
    ) ORDER BY t.target_type), '{}')
    INTO v_targets
    FROM tally.target_types AS t;

    v_union := coalesce(
        nullif(array_to_string(v_targets, ' UNION ALL '), ''),
        'SELECT NULL::text AS target_type, NULL::text AS target_id, NULL::text AS slug, false AS listed,'
        ' 0::bigint AS views, 0::bigint AS copies, 0::bigint AS downloads, 0::bigint AS uses WHERE false'
    );

    v_views := ARRAY[format($view$
CREATE OR REPLACE VIEW tally.counters_live AS
SELECT
    t.target_type,
    t.target_id,
    t.slug,
    t.views + coalesce(b.views, 0) + coalesce(p.views, 0) AS views,
    t.copies + coalesce(b.copies, 0) + coalesce(p.copies, 0) AS copies,
    t.downloads + coalesce(b.downloads, 0) + coalesce(p.downloads, 0) AS downloads,
    t.uses + coalesce(b.uses, 0) + coalesce(p.uses, 0) AS uses,
    coalesce(p.pending, 0) AS pending
FROM (%s) AS t
-- Rolled-up counts still waiting for their host row (held by another transaction, or its code failed).
LEFT JOIN tally.host_backlog AS b ON b.target_type = t.target_type AND b.target_id = t.target_id
LEFT JOIN (
    SELECT
        e.target_type,
        e.target_id,
        count(*) FILTER (WHERE k.counter_column = 'views') AS views,
        count(*) FILTER (WHERE k.counter_column = 'copies') AS copies,
        count(*) FILTER (WHERE k.counter_column = 'downloads') AS downloads,
        count(*) FILTER (WHERE k.counter_column = 'uses') AS uses,
        count(*) AS pending
    FROM tally.events AS e
    INNER JOIN tally.kinds AS k ON k.kind = e.kind
    CROSS JOIN tally.rollup_state AS s
    WHERE e.txid >= s.rolled_up_below AND NOT tally.counted(e.txid, s.snapshot)
    GROUP BY e.target_type, e.target_id
) AS p ON p.target_type = t.target_type AND p.target_id = t.target_id
$view$, v_union)];
    -- The trending lists as relations a DBA can query: views over the scores the rollup keeps (they
    -- need no refresh), listed targets only, score backward-decayed to the windows' day.
    FOREACH v_days IN ARRAY ARRAY[7, 30] LOOP
        v_names := v_names || ('trending_' || v_days || 'd')::name;
        v_views := v_views || format($tv$
CREATE OR REPLACE VIEW tally.%1$I AS
SELECT
    t.target_type,
    t.target_id,
    t.slug,
    ts.score_%2$s * tally.growth(st.day, st.epoch, st.half_life) AS score,
    ts.events_%2$s AS events,
    ts.viewers_%2$s AS viewers,
    t.views,
    t.copies,
    t.downloads,
    t.uses
FROM tally.trending_scores AS ts
CROSS JOIN tally.trending_state AS st
INNER JOIN (%3$s) AS t ON t.target_type = ts.target_type AND t.target_id = ts.target_id
WHERE ts.events_%2$s > 0 AND t.listed
$tv$, 'trending_' || v_days || 'd', v_days || 'd', v_union);
    END LOOP;
    -- Only a view whose statement changed (or that is missing) is made again.
    SELECT array_agg(v.source ORDER BY v.ord) INTO v_changed
    FROM unnest(v_names, v_views) WITH ORDINALITY AS v (name, source, ord)
    LEFT JOIN tally.generated_views AS g ON g.name = v.name
    WHERE g.source IS DISTINCT FROM v.source OR to_regclass(format('tally.%I', v.name)) IS NULL;
    IF cardinality(v_changed) > 0 THEN
        IF NOT tally.execute_briefly(v_changed) THEN
            RAISE EXCEPTION USING
                ERRCODE = '55P03',
                MESSAGE = 'tally.counters_live or a trending view stayed in use; nothing was changed',
                DETAIL = 'Replacing a view waits for the queries reading it, and every new reader would wait behind it.',
                HINT = 'retry, or end the long query on tally.counters_live, tally.trending_7d or tally.trending_30d';
        END IF;
        INSERT INTO tally.generated_views AS g (name, source)
        SELECT v.name, v.source FROM unnest(v_names, v_views) AS v (name, source)
        ON CONFLICT (name) DO UPDATE SET source = excluded.source, made_at = now()
        WHERE g.source IS DISTINCT FROM excluded.source;
    END IF;

    COMMENT ON VIEW tally.counters_live IS
    'Counters of every target plus the events logged but not yet rolled up (pending). Exact at the instant of the query.';
    -- Set on every rebuild: a first install creates the views, and an older one made them again.
    COMMENT ON COLUMN tally.counters_live.target_type IS 'Registered target type.';
    COMMENT ON COLUMN tally.counters_live.target_id IS 'The host row''s key, as canonical text.';
    COMMENT ON COLUMN tally.counters_live.slug IS 'The host row''s slug.';
    COMMENT ON COLUMN tally.counters_live.views IS 'Host counter plus views not yet in it (tally.host_backlog) or not yet rolled up.';
    COMMENT ON COLUMN tally.counters_live.copies IS 'Host counter plus copies not yet in it or not yet rolled up.';
    COMMENT ON COLUMN tally.counters_live.downloads IS 'Host counter plus downloads not yet in it or not yet rolled up.';
    COMMENT ON COLUMN tally.counters_live.uses IS 'Host counter plus uses not yet in it or not yet rolled up.';
    COMMENT ON COLUMN tally.counters_live.pending IS 'Events committed but not yet rolled up, all kinds.';

    FOREACH v_days IN ARRAY ARRAY[7, 30] LOOP
        EXECUTE format(
            'COMMENT ON VIEW tally.%I IS %L', 'trending_' || v_days || 'd',
            format('Listed targets with activity in the last %s UTC days (today included) as of the last rollup, '
                'scored by sum(count * kind weight * 0.5 ^ (age in days / settings.trending_half_life)). '
                'A view over tally.trending_scores, which the rollup keeps: nothing to refresh.', v_days)
        );
        EXECUTE (
            SELECT string_agg(format('COMMENT ON COLUMN tally.%I.%I IS %L', 'trending_' || v_days || 'd', c.name, c.text), '; ')
            FROM (VALUES
                ('target_type', 'Registered target type.'),
                ('target_id', 'The host row''s key, as canonical text.'),
                ('slug', 'The host row''s slug.'),
                ('score', 'Trending score on the windows'' day (see the view''s comment).'),
                ('events', 'Events of weighted kinds in the window.'),
                ('viewers', 'Unique viewers in the window: the sum of daily distinct visitors (visitor-days).'),
                ('views', 'All-time views counter of the host row (not the window''s).'),
                ('copies', 'All-time copies counter of the host row.'),
                ('downloads', 'All-time downloads counter of the host row.'),
                ('uses', 'All-time uses counter of the host row.')
            ) AS c (name, text)
        );
    END LOOP;

    -- The first install defines apply_grants after the registry (surface/grants.sql runs it last).
    IF to_regprocedure('tally.apply_grants()') IS NOT NULL THEN
        PERFORM tally.apply_grants();
    END IF;
END
$build$;

COMMENT ON FUNCTION tally.build_target_views() IS
'Regenerates the tally_host functions, counters_live and the trending views from tally.target_types, '
'then re-applies grants.';

SELECT tally.build_target_views();
