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
 * code and views that depend on the registry. The table is checked first; each refusal names the
 * problem and gives, in its HINT, the exact statement that fixes it:
 *   42809  not a plain table (a view, foreign or partitioned table could run code tally does not see)
 *   55000  row-level security enabled (tally reads host rows with row_security = off)
 *   42703  a named column or a counter column is missing
 *   42804  the key is not of a supported built-in type (whose operators run no foreign code), or a
 *          counter column is not bigint NOT NULL DEFAULT 0 (a NULL counter would stay NULL)
 *   42P10  the key column has no unique index (one id must name one row)
 *   42501  tally_host_access lacks USAGE on the schema or the column privileges it needs
 *   42710  the table is registered already, under another target type (one row, one set of counters)
 *   0A000  the transaction is not READ COMMITTED (tally.lock_registry: concurrent registrations
 *          take turns, and each must read the registry as the last one left it)
 * Tally reads and writes the table only as tally_host_access (see README, trust model).
 */
#variable_conflict use_column
DECLARE
    v_table text := register_target_type.host_table::text;
    v_relkind "char";
    v_rls boolean;
    v_schema name;
    v_column name;
    v_missing text[] := '{}';
    v_fixes text[] := '{}';
    v_attribute record;
    v_read name[];
    v_write name[] := ARRAY['views', 'copies', 'downloads', 'uses', 'counters_refreshed_at']::name[];
    v_grants text[] := '{}';
    v_other text;
BEGIN
    PERFORM tally.lock_registry();
    SELECT c.relkind, c.relrowsecurity, n.nspname INTO v_relkind, v_rls, v_schema
    FROM pg_class AS c INNER JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.oid = register_target_type.host_table;
    IF v_relkind <> 'r' THEN
        RAISE EXCEPTION USING
            ERRCODE = '42809',
            MESSAGE = format('%s is not a plain table', v_table),
            HINT = 'register the table itself: views, foreign and partitioned tables are not accepted';
    END IF;
    IF v_rls THEN
        RAISE EXCEPTION USING
            ERRCODE = '55000',
            MESSAGE = format('%s has row-level security enabled', v_table),
            HINT = format('tally reads host tables with row_security = off: ALTER TABLE %s DISABLE ROW LEVEL SECURITY',
                v_table);
    END IF;

    -- Two types on one table would add both types' events to the same counters, which neither
    -- counters_live nor trending could tell apart.
    SELECT t.target_type INTO v_other FROM tally.target_types AS t
    WHERE t.host_table = register_target_type.host_table AND t.target_type <> register_target_type.target_type;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = '42710',
            MESSAGE = format('%s is registered already, as target type %s', v_table, quote_literal(v_other)),
            HINT = 'a table holds one set of counters: log its events under that type';
    END IF;

    FOREACH v_column IN ARRAY ARRAY[key_column, slug_column, owner_column, visibility_column] LOOP
        IF v_column IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_attribute AS a
            WHERE a.attrelid = register_target_type.host_table AND a.attname = v_column
                AND a.attnum > 0 AND NOT a.attisdropped
        ) THEN
            RAISE EXCEPTION USING
                ERRCODE = '42703',
                MESSAGE = format('column %I does not exist in %s', v_column, v_table),
                HINT = 'name the key, slug, owner and visibility columns with key_column => ..., slug_column => ...';
        END IF;
    END LOOP;

    IF tally.key_type(register_target_type.host_table, key_column)
        NOT IN ('text', 'character varying', 'bigint', 'integer', 'smallint', 'numeric', 'uuid') THEN
        RAISE EXCEPTION USING
            ERRCODE = '42804',
            MESSAGE = format('key column %I of %s is of type %s', key_column, v_table,
                tally.key_type(register_target_type.host_table, key_column)),
            HINT = 'supported key types: text, character varying, bigint, integer, smallint, numeric, uuid';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_index AS i
        INNER JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = register_target_type.host_table AND i.indisunique AND i.indnkeyatts = 1
            AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = key_column
    ) THEN
        RAISE EXCEPTION USING
            ERRCODE = '42P10',
            MESSAGE = format('key column %I of %s has no unique index', key_column, v_table),
            HINT = format('ALTER TABLE %s ADD UNIQUE (%I)', v_table, key_column);
    END IF;

    -- Counters: bigint NOT NULL DEFAULT 0, and a timestamptz the rollup stamps.
    FOR v_attribute IN
        SELECT
            w.name,
            w.type,
            a.attname IS NOT NULL AS present,
            format_type(a.atttypid, a.atttypmod) AS actual_type,
            a.attnotnull,
            pg_get_expr(d.adbin, d.adrelid) AS default_value
        FROM unnest(
            ARRAY['views', 'copies', 'downloads', 'uses', 'counters_refreshed_at']::name[],
            ARRAY['bigint', 'bigint', 'bigint', 'bigint', 'timestamp with time zone']
        ) WITH ORDINALITY AS w (name, type, ord)
        LEFT JOIN pg_attribute AS a
            ON a.attrelid = register_target_type.host_table AND a.attname = w.name AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        ORDER BY w.ord
    LOOP
        IF NOT v_attribute.present THEN
            v_missing := v_missing || v_attribute.name::text;
            v_fixes := v_fixes || format('ADD COLUMN %I %s', v_attribute.name,
                CASE WHEN v_attribute.type = 'bigint' THEN 'bigint NOT NULL DEFAULT 0' ELSE v_attribute.type END);
            CONTINUE;
        END IF;
        IF v_attribute.actual_type <> v_attribute.type THEN
            v_fixes := v_fixes || format('ALTER COLUMN %I TYPE %s', v_attribute.name, v_attribute.type);
        END IF;
        CONTINUE WHEN v_attribute.type <> 'bigint';
        IF v_attribute.default_value IS DISTINCT FROM '0' THEN
            v_fixes := v_fixes || format('ALTER COLUMN %I SET DEFAULT 0', v_attribute.name);
        END IF;
        IF NOT v_attribute.attnotnull THEN
            v_fixes := v_fixes || format('ALTER COLUMN %I SET NOT NULL', v_attribute.name);
        END IF;
    END LOOP;
    IF cardinality(v_missing) > 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = '42703',
            MESSAGE = format('%s lacks the counter columns %s', v_table, array_to_string(v_missing, ', ')),
            HINT = format('ALTER TABLE %s %s', v_table, array_to_string(v_fixes, ', '));
    END IF;
    IF cardinality(v_fixes) > 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = '42804',
            MESSAGE = format('the counter columns of %s must be bigint NOT NULL DEFAULT 0', v_table),
            HINT = format('UPDATE %1$s SET views = coalesce(views, 0), copies = coalesce(copies, 0), '
                'downloads = coalesce(downloads, 0), uses = coalesce(uses, 0); ALTER TABLE %1$s %2$s',
                v_table, array_to_string(v_fixes, ', '));
    END IF;

    -- What tally_host_access needs, and only that: see the README's trust model.
    v_read := array_remove(ARRAY[
        key_column, slug_column, owner_column, visibility_column, 'views', 'copies', 'downloads', 'uses'
    ]::name[], null);
    IF NOT has_schema_privilege('tally_host_access', v_schema, 'USAGE') THEN
        v_grants := v_grants || format('GRANT USAGE ON SCHEMA %I TO tally_host_access;', v_schema);
    END IF;
    IF EXISTS (
        SELECT 1 FROM unnest(v_read) AS r (name)
        WHERE NOT has_column_privilege('tally_host_access', register_target_type.host_table, r.name, 'SELECT')
    ) OR EXISTS (
        SELECT 1 FROM unnest(v_write) AS w (name)
        WHERE NOT has_column_privilege('tally_host_access', register_target_type.host_table, w.name, 'UPDATE')
    ) THEN
        v_grants := v_grants || format('GRANT SELECT (%s), UPDATE (%s) ON %s TO tally_host_access;',
            (
                SELECT string_agg(quote_ident(r.name), ', ' ORDER BY r.ord)
                FROM (
                    SELECT DISTINCT ON (u.name) u.name, u.ord FROM unnest(v_read) WITH ORDINALITY AS u (name, ord)
                    ORDER BY u.name, u.ord
                ) AS r
            ),
            (SELECT string_agg(quote_ident(w.name), ', ') FROM unnest(v_write) AS w (name)),
            v_table);
    END IF;
    IF cardinality(v_grants) > 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = '42501',
            MESSAGE = format('tally_host_access cannot read and update %s', v_table),
            HINT = array_to_string(v_grants, ' ');
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
'Checks a host table (plain, no row security, unique key of a built-in type, bigint NOT NULL DEFAULT 0 counters, '
'grants for tally_host_access), attaches it as a target type and rebuilds the registry code. Owner or superuser only.';
