CREATE OR REPLACE FUNCTION tally.register_target_type(
    target_type text,
    host_table regclass,
    key_column name DEFAULT 'id',
    slug_column name DEFAULT 'slug',
    owner_column name DEFAULT null,
    visibility_column name DEFAULT null,
    visible_values text[] DEFAULT '{public,unlisted}',
    listed_values text[] DEFAULT '{public}',
    owner_only_values text[] DEFAULT '{private}'
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Attaches a host table as a target type, or updates an existing registration, then rebuilds the
 * views that depend on the registry. The host table needs the counter columns views, copies,
 * downloads, uses (bigint) and counters_refreshed_at (timestamptz), and tally_owner needs SELECT and
 * UPDATE on it: log_event checks targets and the rollup writes counters with tally_owner's rights.
 */
#variable_conflict use_column
DECLARE
    v_column name;
BEGIN
    FOREACH v_column IN ARRAY ARRAY[
        key_column, slug_column, owner_column, visibility_column,
        'views', 'copies', 'downloads', 'uses', 'counters_refreshed_at'
    ] LOOP
        IF v_column IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_attribute AS a
            WHERE a.attrelid = register_target_type.host_table AND a.attname = v_column
                AND a.attnum > 0 AND NOT a.attisdropped
        ) THEN
            RAISE EXCEPTION USING
                ERRCODE = '42703',
                MESSAGE = format('column %I does not exist in %s', v_column, register_target_type.host_table),
                HINT = 'host tables need key, slug, views, copies, downloads, uses and counters_refreshed_at';
        END IF;
    END LOOP;
    IF NOT has_table_privilege('tally_owner', register_target_type.host_table, 'SELECT, UPDATE') THEN
        RAISE EXCEPTION USING
            ERRCODE = '42501',
            MESSAGE = format('tally_owner cannot read and update %s', register_target_type.host_table),
            HINT = format('GRANT SELECT, UPDATE ON %s TO tally_owner', register_target_type.host_table);
    END IF;

    INSERT INTO tally.target_types AS t (
        target_type, host_table, key_column, slug_column, owner_column, visibility_column,
        visible_values, listed_values, owner_only_values
    ) VALUES (
        register_target_type.target_type, register_target_type.host_table,
        register_target_type.key_column, register_target_type.slug_column,
        register_target_type.owner_column, register_target_type.visibility_column,
        register_target_type.visible_values, register_target_type.listed_values,
        register_target_type.owner_only_values
    )
    ON CONFLICT (target_type) DO UPDATE SET
        host_table = excluded.host_table,
        key_column = excluded.key_column,
        slug_column = excluded.slug_column,
        owner_column = excluded.owner_column,
        visibility_column = excluded.visibility_column,
        visible_values = excluded.visible_values,
        listed_values = excluded.listed_values,
        owner_only_values = excluded.owner_only_values;

    PERFORM tally.build_target_views();
END
$$;

COMMENT ON FUNCTION tally.register_target_type(text, regclass, name, name, name, name, text[], text[], text[]) IS
'Attaches (or re-attaches) a host table as a target type and rebuilds the registry-derived views. Owner or superuser only.';
