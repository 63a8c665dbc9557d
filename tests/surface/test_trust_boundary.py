"""The owner of a registered host table is untrusted: whatever its triggers, policies or a tampered
generated function do, they run as tally_host_access and gain nothing (no path to tally_owner, to the
raw events, to the jobs' code or to a superuser)."""

import psycopg
import pytest
from psycopg import errors

from tests.conftest import APP_LOGIN, HOST_OWNER_LOGIN, scalar

# Run as the host table's owner. The payload records who runs it and tries every escalation the
# trust issue reproduced; each attempt is its own subtransaction, so one refusal does not hide another.
HOSTILE_TABLE = f"""
CREATE SCHEMA evil;
CREATE TABLE evil.recipes (
    id bigint PRIMARY KEY, slug text NOT NULL,
    views bigint NOT NULL DEFAULT 0, copies bigint NOT NULL DEFAULT 0, downloads bigint NOT NULL DEFAULT 0,
    uses bigint NOT NULL DEFAULT 0, counters_refreshed_at timestamptz
);
INSERT INTO evil.recipes (id, slug) VALUES (1, 'bait');
CREATE TABLE evil.seen (role name, attempt text, succeeded boolean);
GRANT USAGE ON SCHEMA evil TO PUBLIC;
GRANT INSERT ON evil.seen TO PUBLIC;
CREATE FUNCTION evil.payload() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_attempt text;
BEGIN
    FOREACH v_attempt IN ARRAY ARRAY[
        'GRANT SELECT ON tally.events TO {HOST_OWNER_LOGIN}',
        'GRANT tally_owner TO {HOST_OWNER_LOGIN}',
        'ALTER ROLE {HOST_OWNER_LOGIN} SUPERUSER',
        'CREATE OR REPLACE PROCEDURE tally.rollup_job() LANGUAGE sql AS ''SELECT 1''',
        'CREATE OR REPLACE FUNCTION tally_host.pwn() RETURNS int LANGUAGE sql AS ''SELECT 1''',
        'ALTER FUNCTION tally.log_event(text, text, text, text, text, text, text, text, jsonb, uuid) SECURITY INVOKER',
        'UPDATE tally.settings SET clock_override = true',
        'SELECT count(*) FROM tally.events',
        'SELECT count(*) FROM tally.user_agents'
    ] LOOP
        BEGIN
            EXECUTE v_attempt;
            INSERT INTO evil.seen VALUES (current_user, v_attempt, true);
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO evil.seen VALUES (current_user, v_attempt, false);
        END;
    END LOOP;
    RETURN true;
END
$$;
GRANT EXECUTE ON FUNCTION evil.payload() TO PUBLIC;
GRANT USAGE ON SCHEMA evil TO tally_host_access;
GRANT SELECT (id, slug, views, copies, downloads, uses), UPDATE (views, copies, downloads, uses, counters_refreshed_at)
ON evil.recipes TO tally_host_access;
"""


@pytest.fixture
def host_owner(db, connect):
    """A login role that owns a registered host table (evil.recipes) and the payload above."""
    db.execute(f"GRANT CREATE ON DATABASE {db.info.dbname} TO {HOST_OWNER_LOGIN}")
    owner = connect(HOST_OWNER_LOGIN)
    owner.execute(HOSTILE_TABLE)
    db.execute("SELECT tally.register_target_type(target_type => 'recipe', host_table => 'evil.recipes')")
    yield owner
    db.execute(f"DROP OWNED BY {HOST_OWNER_LOGIN} CASCADE")


def escalated(db):
    """Everything the attacker wanted, as a dict; all False means it gained nothing."""
    return {
        "superuser": scalar(db, "SELECT rolsuper FROM pg_roles WHERE rolname = %s", [HOST_OWNER_LOGIN]),
        "reads_events": scalar(db, "SELECT has_table_privilege(%s, 'tally.events', 'SELECT')", [HOST_OWNER_LOGIN]),
        "member_of_owner": scalar(db, "SELECT pg_has_role(%s, 'tally_owner', 'MEMBER')", [HOST_OWNER_LOGIN]),
        "rollup_job_replaced": "SELECT 1" in scalar(
            db, "SELECT prosrc FROM pg_proc WHERE oid = 'tally.rollup_job'::regproc"),
        "log_event_invoker": not scalar(
            db, "SELECT prosecdef FROM pg_proc WHERE proname = 'log_event' AND pronamespace = 'tally'::regnamespace"),
        "clock_override": scalar(db, "SELECT clock_override FROM tally.settings"),
    }


NOTHING = dict.fromkeys(
    ["superuser", "reads_events", "member_of_owner", "rollup_job_replaced", "log_event_invoker", "clock_override"],
    False,
)


def test_host_trigger_fired_by_the_rollup_runs_as_host_access_and_gains_nothing(db, host_owner, connect):
    host_owner.execute("""
        CREATE FUNCTION evil.on_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM evil.payload(); RETURN NEW; END $$;
        CREATE TRIGGER on_update BEFORE UPDATE ON evil.recipes FOR EACH ROW EXECUTE FUNCTION evil.on_update();
    """)
    app = connect(APP_LOGIN)
    assert scalar(app, "SELECT tally.log_event('recipe', '1', 'copy')::text") == "logged"
    run = db.execute("SELECT status, events FROM tally.rollup()").fetchone()  # as a superuser, like cron used to
    assert run == ("ok", 1)
    assert scalar(db, "SELECT copies FROM evil.recipes WHERE id = 1") == 1
    seen = host_owner.execute("SELECT DISTINCT role, succeeded FROM evil.seen").fetchall()
    assert seen == [("tally_host_access", False)]
    assert escalated(db) == NOTHING


def test_host_policy_is_never_evaluated_by_tally_and_logging_fails_loudly(db, host_owner, connect):
    host_owner.execute("""
        ALTER TABLE evil.recipes ENABLE ROW LEVEL SECURITY;
        CREATE POLICY everyone ON evil.recipes USING (evil.payload());
    """)
    app = connect(APP_LOGIN)
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        app.execute("SELECT tally.log_event('recipe', '1', 'view', session_id => 's')")
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        db.execute("SELECT * FROM tally.counters_live WHERE target_type = 'recipe'")
    assert db.execute("SELECT status FROM tally.rollup()").fetchone() == ("ok",)
    assert host_owner.execute("SELECT count(*) FROM evil.seen").fetchone() == (0,)
    assert escalated(db) == NOTHING


def test_registration_of_a_table_with_row_security_is_refused(db, host_owner):
    host_owner.execute("ALTER TABLE evil.recipes ENABLE ROW LEVEL SECURITY")
    with pytest.raises(errors.ObjectNotInPrerequisiteState) as raised:
        db.execute("SELECT tally.register_target_type(target_type => 'recipe2', host_table => 'evil.recipes')")
    assert raised.value.diag.message_hint == "tally reads host tables with row_security = off: " \
                                             "ALTER TABLE evil.recipes DISABLE ROW LEVEL SECURITY"


def test_lookup_altered_to_security_invoker_refuses_to_run_as_its_caller(db, targets):
    # What code running as tally_host_access (the functions' owner) could do to its functions.
    sid = targets()
    db.execute("ALTER FUNCTION tally_host.probe(text, text, text) SECURITY INVOKER")
    with pytest.raises(errors.InsufficientPrivilege, match="run only as tally_host_access"):
        db.execute("SELECT tally.log_event('snippet', %s, 'copy')", [sid])


def test_counter_update_altered_to_security_invoker_refuses_and_the_counts_wait(db, targets):
    sid = targets()
    db.execute("SELECT tally.log_event('snippet', %s, 'copy')", [sid])
    db.execute("ALTER FUNCTION tally_host.add_counters(text, text[], bigint[], bigint[], bigint[], bigint[]) "
               "SECURITY INVOKER")
    assert db.execute("SELECT status, events FROM tally.rollup()").fetchone() == ("ok", 1)
    assert scalar(db, "SELECT copies FROM tally.snippets WHERE id = %s", [sid]) == 0
    assert scalar(db, "SELECT reason FROM tally.host_backlog WHERE target_id = %s", [sid]).startswith(
        "42501: tally_host functions run only as tally_host_access")


def test_host_access_role_owns_nothing_in_tally_and_can_use_nothing_there(db):
    assert db.execute("SELECT rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles "
                      "WHERE rolname = 'tally_host_access'").fetchone() == (False, False, False, False, False)
    assert db.execute("SELECT count(*) FROM pg_auth_members WHERE member = 'tally_host_access'::regrole").fetchone() \
        == (0,)
    owned = db.execute("""
        SELECT c.oid::regclass::text FROM pg_class AS c
        WHERE c.relnamespace = 'tally'::regnamespace AND c.relowner = 'tally_host_access'::regrole
        UNION ALL
        SELECT p.oid::regprocedure::text FROM pg_proc AS p
        WHERE p.pronamespace <> 'tally_host'::regnamespace AND p.proowner = 'tally_host_access'::regrole
    """).fetchall()
    assert owned == []
    readable = db.execute("""
        SELECT c.oid::regclass::text FROM pg_class AS c
        WHERE c.relnamespace = 'tally'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND c.relname NOT IN ('snippets', 'templates', 'documents')
          AND (has_table_privilege('tally_host_access', c.oid, 'SELECT')
               OR has_table_privilege('tally_host_access', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE'))
    """).fetchall()
    assert readable == []
    callable_ = db.execute("""
        SELECT p.oid::regprocedure::text FROM pg_proc AS p
        WHERE p.pronamespace = 'tally'::regnamespace AND has_function_privilege('tally_host_access', p.oid, 'EXECUTE')
    """).fetchall()
    assert callable_ == []
    assert not scalar(db, "SELECT has_schema_privilege('tally_host_access', 'tally_host', 'CREATE')")
    assert not scalar(db, "SELECT has_schema_privilege('tally_host_access', 'tally', 'CREATE')")


def test_no_host_function_is_callable_by_public_or_the_app(connect):
    app = connect(APP_LOGIN)
    with pytest.raises(errors.InsufficientPrivilege):
        app.execute("SELECT tally_host.add_counters('snippet', '{x}', '{1000}', '{0}', '{0}', '{0}')")
    with pytest.raises(errors.InsufficientPrivilege):
        app.execute("SELECT * FROM tally_host.probe('snippet', 'x', NULL)")


def test_generated_sql_never_appears_in_an_error(db, host_owner, connect):
    host_owner.execute("REVOKE UPDATE ON evil.recipes FROM tally_host_access")
    app = connect(APP_LOGIN)
    app.execute("SELECT tally.log_event('recipe', '1', 'copy')")
    db.execute("SELECT tally.rollup()")
    error = scalar(db, "SELECT deferred_reason FROM tally.job_status")
    assert error.startswith("42501: permission denied for table recipes")
    assert "UPDATE" not in error and "unnest" not in error


def test_a_failed_host_update_loses_nothing(db, host_owner, connect):
    host_owner.execute("REVOKE UPDATE ON evil.recipes FROM tally_host_access")
    app = connect(APP_LOGIN)
    app.execute("SELECT tally.log_event('recipe', '1', 'copy')")
    assert db.execute("SELECT status, events FROM tally.rollup()").fetchone() == ("ok", 1)
    assert scalar(db, "SELECT copies FROM tally.counters_live WHERE target_type = 'recipe'") == 1
    host_owner.execute("GRANT UPDATE (views, copies, downloads, uses, counters_refreshed_at) "
                       "ON evil.recipes TO tally_host_access")
    assert db.execute("SELECT status, events FROM tally.rollup()").fetchone() == ("ok", 0)
    assert scalar(db, "SELECT copies FROM evil.recipes WHERE id = 1") == 1
    assert scalar(db, "SELECT count(*) FROM tally.host_backlog") == 0


def test_a_host_table_whose_code_fails_holds_back_only_its_own_counters(db, host_owner, targets, connect):
    # A trigger that raises used to fail the whole rollup: every type's counters, daily counts and
    # trending stopped until the host table's owner fixed it.
    host_owner.execute("""
        CREATE FUNCTION evil.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'recipes are read-only today'; END $$;
        CREATE TRIGGER refuse BEFORE UPDATE ON evil.recipes FOR EACH ROW EXECUTE FUNCTION evil.refuse();
    """)
    sid = targets()
    app = connect(APP_LOGIN)
    app.execute("SELECT tally.log_event('recipe', '1', 'copy'), tally.log_event('snippet', %s, 'copy')", [sid])
    assert db.execute("SELECT status, events FROM tally.rollup()").fetchone() == ("ok", 2)
    assert scalar(db, "SELECT copies FROM tally.snippets WHERE id = %s", [sid]) == 1
    assert scalar(db, "SELECT copies FROM evil.recipes WHERE id = 1") == 0
    assert scalar(db, "SELECT sum(count) FROM tally.daily_counts WHERE target_type = 'recipe'") == 1
    assert scalar(db, "SELECT count(*) FROM tally.trending('recipe', '7d', 10)") == 1
    assert db.execute("SELECT deferred_targets, deferred_reason FROM tally.job_status").fetchone() == (
        1, "P0001: recipes are read-only today")
    host_owner.execute("DROP TRIGGER refuse ON evil.recipes")
    assert db.execute("SELECT status, events FROM tally.rollup()").fetchone() == ("ok", 0)
    assert scalar(db, "SELECT copies FROM evil.recipes WHERE id = 1") == 1
    assert scalar(db, "SELECT deferred_targets FROM tally.job_status") == 0


def test_app_role_can_read_counters_live_right_after_a_type_is_registered(db, host_owner, connect):
    app = connect(APP_LOGIN)
    rows = app.execute("SELECT target_id, slug, copies FROM tally.counters_live WHERE target_type = 'recipe'")
    assert rows.fetchall() == [("1", "bait", 0)]


def test_host_owner_cannot_call_tally_code_directly(connect, host_owner):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        host_owner.execute("SELECT tally.rollup()")
