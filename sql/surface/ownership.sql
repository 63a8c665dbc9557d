-- tally:always tally:superuser
-- Everything in schema tally belongs to tally_owner (a NOLOGIN, non-superuser role), so the
-- SECURITY DEFINER functions run with its rights and no more. Migrations create tables as the
-- migrating superuser; this hands them over. Extension members (dblink) stay with their extension.
ALTER SCHEMA tally OWNER TO tally_owner;

DO $own$
DECLARE
    v_object record;
BEGIN
    FOR v_object IN
        SELECT
            CASE c.relkind
                WHEN 'v' THEN 'VIEW'
                WHEN 'm' THEN 'MATERIALIZED VIEW'
                WHEN 'S' THEN 'SEQUENCE'
                ELSE 'TABLE'
            END AS kind,
            format('tally.%I', c.relname) AS name
        FROM pg_catalog.pg_class AS c
        WHERE c.relnamespace = 'tally'::regnamespace
            AND c.relkind IN ('r', 'p', 'v', 'm')
            AND c.relowner <> 'tally_owner'::regrole
        UNION ALL
        SELECT
            CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
            p.oid::regprocedure::text
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'tally'::regnamespace
            AND p.proowner <> 'tally_owner'::regrole
            AND NOT EXISTS (
                SELECT 1 FROM pg_catalog.pg_depend AS d
                WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
            )
        UNION ALL
        SELECT 'TYPE', format('tally.%I', t.typname)
        FROM pg_catalog.pg_type AS t
        WHERE t.typnamespace = 'tally'::regnamespace
            AND t.typtype = 'e'
            AND t.typowner <> 'tally_owner'::regrole
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO tally_owner', v_object.kind, v_object.name);
    END LOOP;
END
$own$;
