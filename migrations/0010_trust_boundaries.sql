-- The trust boundary between pgtally and the application tables it counts for (host tables).
--
-- A host table belongs to the application, whose owner may add triggers, policies or rules to it.
-- Whatever runs there runs as the role touching the table, so tally never touches one as tally_owner:
--   tally_host_access  NOLOGIN. Owns only the functions generated into schema tally_host (read a host
--                      row, add to host counters). Holds nothing in schema tally and only the grants
--                      the registered tables need, so code a host table runs as it gains nothing.
--                      tally_owner is a member so that it can call (and regenerate) those functions.
--   tally_job          LOGIN (pg_cron connects as the job's role). What pg_cron runs the jobs as when
--                      a superuser schedules them: EXECUTE on the job functions, nothing else.
DO $roles$
DECLARE
    v_role record;
BEGIN
    FOR v_role IN SELECT * FROM (VALUES ('tally_host_access', 'NOLOGIN'), ('tally_job', 'LOGIN')) AS r (name, login)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r WHERE r.rolname = v_role.name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I %s', v_role.name, v_role.login);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it first
            END;
        END IF;
    END LOOP;
END
$roles$;

GRANT tally_host_access TO tally_owner;

-- The generated host functions live here, not in schema tally: their owner must hold nothing there.
-- tally_host_access gets no CREATE on it (it could replace the functions tally_owner calls), and
-- PUBLIC nothing at all.
CREATE SCHEMA tally_host AUTHORIZATION tally_owner;
REVOKE ALL ON SCHEMA tally_host FROM public;

-- The default host tables, granted as an application grants its own: the columns tally reads and
-- the counters it writes, nothing else (no events, settings or functions).
GRANT USAGE ON SCHEMA tally TO tally_host_access;
GRANT SELECT (id, slug, owner_id, visibility, views, copies, downloads, uses),
UPDATE (views, copies, downloads, uses, counters_refreshed_at)
ON tally.snippets, tally.templates, tally.documents TO tally_host_access;

COMMENT ON SCHEMA tally_host IS
'Functions generated from tally.target_types that read and update host tables, owned by tally_host_access.';

-- Abuse limits group IPv6 addresses by prefix: one host usually holds a whole /64.
ALTER TABLE tally.settings
ADD COLUMN ipv6_prefix integer NOT NULL DEFAULT 64 CHECK (ipv6_prefix BETWEEN 32 AND 128),
ADD COLUMN user_agent_ttl interval NOT NULL DEFAULT '30 days' CHECK (user_agent_ttl > '0');

COMMENT ON COLUMN tally.settings.ipv6_prefix IS
'Rate limits and the device identity treat IPv6 addresses of one prefix of this length as one address.';
COMMENT ON COLUMN tally.settings.user_agent_ttl IS
'Housekeeping deletes user agents unused for longer than this (bounding tally.user_agents whatever '
'event_retention is); older events then show no user agent.';

-- Discards are counted per backend (shard = pid, which can exceed smallint): no backend then waits
-- on another's row lock. See sql/ingest/count_discard.sql.
ALTER TABLE tally.discards ALTER COLUMN shard TYPE integer;

-- Canonical target ids. Before this release a numeric or uuid id was stored as the caller typed it
-- ('043', '+43', upper-case uuids), so one target could appear under several spellings. Rewrite them
-- as the host table's key type renders them, merging their daily counts; run
-- SELECT tally.rebuild_counters() afterwards to correct the host counters.
DO $canonical$
DECLARE
    v_type record;
BEGIN
    FOR v_type IN
        SELECT t.target_type, format_type(a.atttypid, a.atttypmod) AS key_type
        FROM tally.target_types AS t
        INNER JOIN pg_catalog.pg_attribute AS a ON a.attrelid = t.host_table AND a.attname = t.key_column
        WHERE a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'uuid'::regtype, 'numeric'::regtype)
    LOOP
        EXECUTE format($q$
            WITH moved AS (
                DELETE FROM tally.daily_counts AS d
                WHERE d.target_type = %1$L AND d.target_id <> (d.target_id::%2$s)::text
                RETURNING d.day, d.target_type, (d.target_id::%2$s)::text AS target_id, d.kind, d.count
            )
            INSERT INTO tally.daily_counts AS d (day, target_type, target_id, kind, count)
            SELECT m.day, m.target_type, m.target_id, m.kind, sum(m.count) FROM moved AS m
            GROUP BY m.day, m.target_type, m.target_id, m.kind
            ON CONFLICT (day, target_type, target_id, kind) DO UPDATE SET count = d.count + excluded.count
        $q$, v_type.target_type, v_type.key_type);
        EXECUTE format(
            'UPDATE tally.events AS e SET target_id = (e.target_id::%2$s)::text'
            ' WHERE e.target_type = %1$L AND e.target_id <> (e.target_id::%2$s)::text',
            v_type.target_type, v_type.key_type
        );
    END LOOP;
END
$canonical$;
