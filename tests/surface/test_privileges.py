"""Who may do what: tally_app, tally_admin, PUBLIC, and SECURITY DEFINER hygiene."""

import psycopg
import pytest
from psycopg import errors

from tests.conftest import ADMIN_LOGIN, APP_LOGIN, log, scalar

DENIED_TO_BOTH = [
    "SELECT * FROM tally.events",
    "SELECT * FROM tally.event_log",
    "SELECT * FROM tally.user_agents",
    "UPDATE tally.events SET kind = 'copy'",
    "DELETE FROM tally.events",
    "INSERT INTO tally.events (created_at, target_type, target_id, kind) VALUES (now(), 'snippet', 'x', 'view')",
    "SELECT * FROM tally.debounce",
    "SELECT * FROM tally.rate_limit_state",
    "SELECT * FROM tally.rate_limit_rejections",
    "SELECT * FROM tally.visitor_salts",
    "SELECT * FROM tally.revalidation_outbox",
    "SELECT * FROM tally.next_tags(1)",
    "SELECT tally.ack_tags('{1}')",
    "UPDATE tally.pii_state SET cleared_below = now()",
    "SELECT tally.visitor_salt(current_date)",
    "SELECT tally.clear_personal_data()",
    "SELECT tally.prepare_salts()",
    "UPDATE tally.settings SET user_agent_max = 1",
    "UPDATE tally.kinds SET ip_limit = 1",
    "SELECT tally.rebuild_counters()",
    "SELECT tally.register_target_type('x', 'tally.snippets')",
    "SELECT * FROM tally.schedule_jobs()",
    "SELECT tally.create_partitions()",
    "UPDATE tally.snippets SET views = 1000",
]
DENIED_TO_APP = [
    "SELECT tally.rollup()",
    "SELECT tally.refresh_trending()",
    "SELECT tally.housekeeping()",
    "SELECT * FROM tally.high_volume_ips()",
    "SELECT * FROM tally.rate_limit_log",
    "SELECT * FROM tally.discard_log",
    "SELECT * FROM tally.rollup_runs",
    "SELECT * FROM tally.job_status",
    "SELECT tally.forget_user('someone')",
]


@pytest.mark.parametrize("statement", DENIED_TO_BOTH + DENIED_TO_APP)
def test_app_role_is_denied(connect, statement):
    app = connect(APP_LOGIN)
    with pytest.raises(errors.InsufficientPrivilege):
        app.execute(statement)


@pytest.mark.parametrize("statement", DENIED_TO_BOTH)
def test_admin_role_is_denied_raw_events_and_settings(connect, statement):
    admin = connect(ADMIN_LOGIN)
    with pytest.raises(errors.InsufficientPrivilege):
        admin.execute(statement)


def test_app_role_can_log_read_trending_and_counters(connect, targets):
    sid = targets(slug="app-visible")
    app = connect(APP_LOGIN)
    assert log(app, "snippet", sid, "copy") == "logged"
    assert app.execute("SELECT * FROM tally.trending('snippet', '7d', 5)").fetchall() == []
    assert scalar(app, "SELECT copies FROM tally.counters_live WHERE target_id = %s", [sid]) == 1
    assert scalar(app, "SELECT views FROM tally.snippets WHERE id = %s", [sid]) == 0


@pytest.mark.parametrize("statement", [
    "SELECT * FROM tally.rate_limit_log",
    "SELECT * FROM tally.discard_log",
    "SELECT * FROM tally.rollup_runs",
    "SELECT * FROM tally.job_status",
    "SELECT * FROM tally.high_volume_ips('1 day', 1)",
    "SELECT tally.rollup()",
    "SELECT tally.refresh_trending()",
    "SELECT tally.housekeeping()",
    "SELECT tally.log_event('snippet', 'x', 'view')",
])
def test_admin_role_can_monitor_and_run_jobs(connect, statement):
    admin = connect(ADMIN_LOGIN)
    admin.execute(statement)


def test_public_can_execute_no_tally_routine(db):
    granted = db.execute("""
        SELECT p.oid::regprocedure::text
        FROM pg_proc AS p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
        WHERE p.pronamespace IN ('tally'::regnamespace, 'public'::regnamespace)
          AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'
          AND (p.pronamespace = 'tally'::regnamespace OR p.proname = 'log_event')
    """).fetchall()
    assert granted == []


def test_a_role_outside_tally_groups_cannot_log(db, connect):
    db.execute("DO $$ BEGIN CREATE ROLE tally_test_outsider LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    outsider = connect("tally_test_outsider")
    with pytest.raises(errors.InsufficientPrivilege):
        outsider.execute("SELECT log_event('snippet', 'x', 'view')")


def test_security_definer_functions_are_owned_by_a_nologin_non_superuser_with_pinned_search_path(db):
    rows = db.execute("""
        SELECT p.oid::regprocedure::text, r.rolname, r.rolsuper, r.rolcanlogin, p.proconfig
        FROM pg_proc AS p JOIN pg_roles AS r ON r.oid = p.proowner
        WHERE p.pronamespace = 'tally'::regnamespace AND p.prosecdef
    """).fetchall()
    assert len(rows) >= 8
    for name, owner, superuser, can_login, config in rows:
        assert (owner, superuser, can_login) == ("tally_owner", False, False), name
        assert "search_path=pg_catalog, pg_temp" in (config or []), name


def test_every_function_pins_its_search_path_but_the_documented_exceptions(db):
    # rollup_job COMMITs (a procedure with SET may not); address_bucket, clean_metadata, clean_text,
    # counted, debounce_key, growth, parse_ip, rate_limit_key, round_score, top_size, visitor_identity and
    # visitor_key must stay inlinable.
    rows = db.execute("""
        SELECT p.oid::regprocedure::text FROM pg_proc AS p
        WHERE p.pronamespace = 'tally'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
          AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
    """).fetchall()
    assert sorted(r[0] for r in rows) == [
        "tally.address_bucket(text,inet,integer)", "tally.clean_metadata(jsonb,integer)",
        "tally.clean_text(text,integer)", "tally.counted(bigint,pg_snapshot)",
        "tally.debounce_key(text,text,text,uuid)", "tally.growth(date,date,interval)", "tally.parse_ip(text)",
        "tally.rate_limit_key(text,text)", "tally.rollup_job()", "tally.round_score(double precision)",
        "tally.top_size()", "tally.visitor_identity(text,text,text,text)", "tally.visitor_key(bytea,bytea,text)"]


def test_every_tally_function_has_a_comment(db):
    rows = db.execute("""
        SELECT p.oid::regprocedure::text FROM pg_proc AS p
        WHERE p.pronamespace = 'tally'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
          AND obj_description(p.oid, 'pg_proc') IS NULL
    """).fetchall()
    assert rows == []


def test_everything_in_the_schema_belongs_to_tally_owner(db):
    rows = db.execute("""
        SELECT c.relname FROM pg_class AS c
        WHERE c.relnamespace = 'tally'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND c.relowner <> 'tally_owner'::regrole
    """).fetchall()
    assert rows == []


def test_search_path_hijack_has_no_effect_on_log_event(db, connect, targets):
    sid = targets()
    db.execute("CREATE SCHEMA IF NOT EXISTS evil AUTHORIZATION tally_test_app")
    app = connect(APP_LOGIN)
    app.execute("""
        CREATE FUNCTION evil.md5(text) RETURNS text LANGUAGE sql AS $$ SELECT 'hijacked' $$;
        CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '1999-01-01'::timestamptz $$;
        CREATE FUNCTION evil.left(text, integer) RETURNS text LANGUAGE sql AS $$ SELECT 'hijacked' $$;
        CREATE FUNCTION evil.texteq_evil(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
        CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq_evil);
        CREATE TABLE evil.settings (user_agent_max integer);
    """)
    app.execute("SET search_path = evil, public, pg_catalog")
    assert scalar(app, "SELECT tally.log_event('snippet', 'nope', 'view', session_id => 's')::text") \
        == "discarded_missing_target"
    assert log(app, "snippet", sid, "copy", user_agent="Mozilla/5.0") == "logged"
    row = db.execute("SELECT created_at > now() - interval '1 hour', user_agent FROM tally.event_log").fetchone()
    assert row == (True, "Mozilla/5.0")


def test_unqualified_log_event_resolves_to_the_tally_wrapper(db):
    assert scalar(db, "SELECT count(*) FROM pg_proc WHERE proname = 'log_event' "
                      "AND pronamespace = 'public'::regnamespace") == 1


def test_tally_app_cannot_reach_dblink(connect):
    app = connect(APP_LOGIN)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT tally_dblink.dblink_exec('dbname=postgres', 'SELECT 1')")


def test_a_consumer_role_takes_tags_and_reads_nothing_else(db, connect, targets):
    db.execute("DO $$ BEGIN CREATE ROLE tally_test_consumer LOGIN IN ROLE tally_consumer;"
               " EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    log(db, "snippet", targets(slug="consumed"), "copy")
    db.execute("SELECT tally.rollup()")
    consumer = connect("tally_test_consumer")
    consumer.execute("BEGIN")
    rows = consumer.execute("SELECT id, tag FROM tally.next_tags(10)").fetchall()
    assert [tag for _, tag in rows] == ["snippet:consumed"]
    assert scalar(consumer, "SELECT tally.ack_tags(%s)", [[rows[0][0]]]) == 1
    consumer.execute("COMMIT")
    for statement in ("SELECT * FROM tally.revalidation_outbox", "SELECT * FROM tally.snippets",
                      "SELECT tally.log_event('snippet', 'x', 'view')"):
        with pytest.raises(errors.InsufficientPrivilege):
            consumer.execute(statement)
        consumer.rollback()


@pytest.mark.parametrize("call", [
    "tally.clean_text('x' || g, 10)", "tally.counted(g::bigint, pg_current_snapshot())",
    "tally.debounce_key('snippet', 't' || g, 'view', NULL::uuid)",
    "tally.growth(current_date, current_date + g, '3 days')",
    "tally.rate_limit_key('ip:' || g, 'view')", "tally.round_score(g::float8)", "tally.top_size() + g",
    "tally.visitor_key('\\x00'::bytea, '\\x01'::bytea, 'x' || g)",
    "tally.address_bucket('::1', ('::' || g)::inet, 64)", "tally.parse_ip('10.0.0.' || g)",
    "tally.clean_metadata(jsonb_build_object('g', g), 100)",
    "tally.visitor_identity(NULL, NULL, 'ip' || g, 'agent')",
])
def test_the_helpers_left_without_search_path_are_really_inlined(db, call):
    # A helper whose body is more volatile than its declaration is never inlined: a hidden call per row.
    plan = "\n".join(r[0] for r in db.execute(f"EXPLAIN VERBOSE SELECT {call} FROM generate_series(1, 2) AS g"))
    assert call.split("(")[0] + "(" not in plan, plan
