CREATE OR REPLACE FUNCTION tally.add_host_counters(
    target_type text,
    ids text[],
    views bigint[],
    copies bigint[],
    downloads bigint[],
    uses bigint[]
)
RETURNS TABLE (target_id text, tag text, deferred text)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * The rollup's step into one target type's host table. tally_host.add_counters() (as
 * tally_host_access) adds the batch's counts and names each row it updated, with its cache tag, or
 * skipped because another transaction held it. One row per host row: deferred is NULL for a row
 * updated, else why its counts wait for a later rollup (tally.host_backlog.reason).
 * Host code that fails (a trigger that raises, row security enabled since registration, a grant
 * revoked) undoes the whole call and defers every row of the type, with the error (SQLSTATE and
 * message, cut to 200 characters) as the reason: one host table's fault holds back its own counters,
 * not every type's, nor daily counts and trending. A cancel (statement_timeout) still fails the rollup.
 * Runs as its caller (the rollup, as tally_owner).
 */
#variable_conflict use_column
DECLARE
    v_ids text [];
    v_tags text [];
    v_error text;
BEGIN
    BEGIN
        SELECT coalesce(array_agg(a.target_id), '{}'), coalesce(array_agg(a.tag), '{}') INTO v_ids, v_tags
        FROM tally_host.add_counters(add_host_counters.target_type, ids, views, copies, downloads, uses) AS a;
    EXCEPTION WHEN OTHERS THEN
        v_error := left(format('%s: %s', SQLSTATE, SQLERRM), 200);
    END;
    IF v_error IS NOT NULL THEN
        RETURN QUERY SELECT i.id, NULL::text, v_error FROM unnest(ids) AS i (id);
        RETURN;
    END IF;
    RETURN QUERY
    SELECT r.id, r.tag, CASE WHEN r.tag IS NULL THEN 'row locked by another transaction' END
    FROM unnest(v_ids, v_tags) AS r (id, tag);
END
$$;

COMMENT ON FUNCTION tally.add_host_counters(text, text[], bigint[], bigint[], bigint[], bigint[]) IS
'The rollup''s host-counter step for one type: the rows updated (with cache tags) and those deferred, with why '
'(a row another transaction held; or, for every row, the error the host table''s code raised).';
