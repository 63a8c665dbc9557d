CREATE OR REPLACE FUNCTION tally.cron_conninfo()
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * How dblink reaches the database pg_cron lives in (cron.database_name): settings.cron_conninfo when
 * set, else this server's first socket directory (or localhost), its port, that database and the
 * current user. Values are quoted as libpq conninfo wants: in single quotes, \ and ' escaped.
 */
DECLARE
    v_conninfo text;
    v_socket text := btrim(split_part(current_setting('unix_socket_directories'), ',', 1));
BEGIN
    SELECT s.cron_conninfo INTO v_conninfo FROM tally.settings AS s;
    IF v_conninfo IS NOT NULL THEN
        RETURN v_conninfo;
    END IF;
    RETURN format(
        'host=''%s'' port=%s dbname=''%s'' user=''%s''',
        replace(replace(coalesce(nullif(v_socket, ''), 'localhost'), '\', '\\'), '''', '\'''),
        current_setting('port'),
        replace(replace(current_setting('cron.database_name'), '\', '\\'), '''', '\'''),
        replace(replace(current_user, '\', '\\'), '''', '\''')
    );
END
$$;

COMMENT ON FUNCTION tally.cron_conninfo() IS
'libpq conninfo for the pg_cron database: settings.cron_conninfo, or this server''s socket, port and current user.';

CREATE OR REPLACE FUNCTION tally.dblink_schema()
RETURNS name
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Where the dblink extension is installed (tally_dblink by the migrations, or wherever it already was).
    SELECT n.nspname
    FROM pg_extension AS e INNER JOIN pg_namespace AS n ON e.extnamespace = n.oid
    WHERE e.extname = 'dblink'
$$;

COMMENT ON FUNCTION tally.dblink_schema() IS
'The schema of the dblink extension, or NULL when it is not installed.';

CREATE OR REPLACE FUNCTION tally.cron_location()
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * 'local': pg_cron is installed in this database; 'remote': it lives in cron.database_name and dblink
 * is here to reach it; NULL: not available. cron.database_name is readable by superusers only (and
 * pg_read_all_settings): for other roles a remote pg_cron counts as not available.
 */
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension AS e WHERE e.extname = 'pg_cron') THEN
        RETURN 'local';
    END IF;
    IF current_setting('cron.database_name', true) IS NOT NULL
        AND current_setting('cron.database_name', true) <> current_database()
        AND EXISTS (SELECT 1 FROM pg_extension AS e WHERE e.extname = 'dblink') THEN
        RETURN 'remote';
    END IF;
    RETURN NULL;
EXCEPTION WHEN insufficient_privilege THEN
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION tally.cron_location() IS
'Where pg_cron is: local (this database), remote (cron.database_name, via dblink) or NULL (not available).';

CREATE OR REPLACE FUNCTION tally.cron_exec(command text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Runs one statement in pg_cron's database, locally or through dblink. Raises 55000 when pg_cron is
 * not available. Runs as the caller: pg_cron records jobs under the role that schedules them.
 */
DECLARE
    v_location text := tally.cron_location();
    v_dblink name;
BEGIN
    IF v_location = 'local' THEN
        EXECUTE command;
    ELSIF v_location = 'remote' THEN
        v_dblink := tally.dblink_schema();
        -- dblink_exec refuses statements that return rows; a DO block runs any statement there.
        EXECUTE format('SELECT %I.dblink_exec($1, $2)', v_dblink)
        USING tally.cron_conninfo(), format('DO %L', format('BEGIN EXECUTE %L; END', command));
    ELSE
        RAISE EXCEPTION USING
            ERRCODE = '55000',
            MESSAGE = 'pg_cron is not available to this database',
            HINT = 'install postgresql-15-cron, set shared_preload_libraries = ''pg_cron'' and '
                || 'CREATE EXTENSION pg_cron in the cron.database_name database (with dblink here if that is another database)';
    END IF;
END
$$;

COMMENT ON FUNCTION tally.cron_exec(text) IS
'Runs a statement in pg_cron''s database (here, or via dblink); 55000 when pg_cron is not available.';

CREATE OR REPLACE FUNCTION tally.cron_jobs()
RETURNS TABLE (
    jobid bigint,
    jobname text,
    schedule text,
    command text,
    active boolean,
    last_start timestamptz,
    last_end timestamptz,
    last_status text,
    last_message text
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * This database's tally jobs in pg_cron with their latest run; no rows when pg_cron is not available.
 * Runs as the caller, and pg_cron's row security shows each role only the jobs it scheduled.
 */
DECLARE
    v_location text := tally.cron_location();
    v_dblink name;
    v_query text := format($q$
        SELECT j.jobid::bigint, j.jobname::text, j.schedule::text, j.command::text, j.active,
            r.start_time, r.end_time, r.status::text, r.return_message::text
        FROM cron.job AS j
        LEFT JOIN LATERAL (
            SELECT d.start_time, d.end_time, d.status, d.return_message
            FROM cron.job_run_details AS d
            WHERE d.jobid = j.jobid
            ORDER BY d.runid DESC
            LIMIT 1
        ) AS r ON true
        WHERE j.jobname = ANY (%L::text [])
        ORDER BY j.jobname
    $q$, tally.job_names());
BEGIN
    IF v_location = 'local' THEN
        RETURN QUERY EXECUTE v_query;
    ELSIF v_location = 'remote' THEN
        v_dblink := tally.dblink_schema();
        RETURN QUERY EXECUTE format(
            'SELECT * FROM %I.dblink($1, $2) AS t (jobid bigint, jobname text, schedule text, command text,'
            ' active boolean, last_start timestamptz, last_end timestamptz, last_status text, last_message text)',
            v_dblink
        ) USING tally.cron_conninfo(), v_query;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    -- A reader without access to the conninfo (settings) sees no job rows rather than an error.
    RETURN;
END
$$;

COMMENT ON FUNCTION tally.cron_jobs() IS
'This database''s tally pg_cron jobs and their latest run (as visible to the caller); empty without pg_cron.';
