CREATE OR REPLACE FUNCTION tally.key_type(host_table regclass, key_column name)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The SQL type of a host table's key column, as a cast target for generated SQL ('text', 'bigint',
    -- ...). Without its typmod: a cast to character varying(8) would cut a longer id down to another one.
    SELECT format_type(a.atttypid, null)
    FROM pg_attribute AS a
    WHERE a.attrelid = host_table AND a.attname = key_column
$$;

COMMENT ON FUNCTION tally.key_type(regclass, name) IS
'The type of a host table''s key column (without typmod), for the SQL generated from tally.target_types.';
