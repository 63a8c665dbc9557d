"""The target registry: a host application attaches its own table, with its own key type, and
register_target_type() refuses a table it could not count into correctly or safely, saying how to fix it."""

import threading

import psycopg
import pytest
from psycopg import errors

from tests.conftest import APP_LOGIN, log, scalar, wait_until_blocked

RECIPES = """
CREATE SCHEMA app;
CREATE TABLE app.recipes (
    id bigint PRIMARY KEY, handle text UNIQUE NOT NULL, author text, state text NOT NULL DEFAULT 'live',
    views bigint NOT NULL DEFAULT 0, copies bigint NOT NULL DEFAULT 0, downloads bigint NOT NULL DEFAULT 0,
    uses bigint NOT NULL DEFAULT 0, counters_refreshed_at timestamptz
);
INSERT INTO app.recipes (id, handle, author, state)
VALUES (1, 'pancakes', 'ann', 'live'), (2, 'draft', 'ann', 'hidden');
"""
GRANTS = ("GRANT USAGE ON SCHEMA app TO tally_host_access; "
          "GRANT SELECT (id, handle, author, state, views, copies, downloads, uses), "
          "UPDATE (views, copies, downloads, uses, counters_refreshed_at) ON app.recipes TO tally_host_access;")


def register(db, table="app.recipes"):
    db.execute(f"""SELECT tally.register_target_type(target_type => 'recipe', host_table => '{table}',
        key_column => 'id', slug_column => 'handle', owner_column => 'author', visibility_column => 'state',
        visible_values => '{{live}}', listed_values => '{{live}}', owner_only_values => '{{hidden}}')""")


def refusal(db, setup, table="app.recipes"):
    """Runs setup after the recipe table and its grants, then registers; returns the error raised."""
    db.execute(RECIPES)
    db.execute(GRANTS)
    db.execute(setup)
    with pytest.raises(psycopg.Error) as raised:
        register(db, table)
    assert "\n" not in raised.value.diag.message_primary  # one line, no generated SQL
    return raised.value


def recipes_and_dishes(db):
    """Two tables of the same shape, each with its grants; neither registered yet."""
    db.execute(RECIPES)
    db.execute(GRANTS)
    db.execute("CREATE TABLE app.dishes (LIKE app.recipes INCLUDING ALL); "
               "INSERT INTO app.dishes SELECT * FROM app.recipes")
    db.execute(GRANTS.replace("app.recipes", "app.dishes"))


def register_dish(conn, outcome):
    """Registers app.dishes as 'dish' on conn; appends 'registered' or the error raised to outcome."""
    try:
        conn.execute("SELECT tally.register_target_type('dish', 'app.dishes', slug_column => 'handle')")
        outcome.append("registered")
    except psycopg.Error as exc:
        outcome.append(exc)


def test_registered_table_is_validated_counted_and_trending(db):
    db.execute(RECIPES)
    db.execute(GRANTS)
    register(db)
    assert log(db, "recipe", "1", "view", session_id="s") == "logged"
    assert log(db, "recipe", "2", "view", session_id="s") == "discarded_not_visible"
    assert log(db, "recipe", "2", "view", user_id="ann") == "logged"
    assert log(db, "recipe", "3", "view", session_id="s") == "discarded_missing_target"
    assert log(db, "recipe", "not-a-number", "view", session_id="s") == "discarded_missing_target"
    db.execute("SELECT tally.rollup(); SELECT tally.refresh_trending()")
    assert db.execute("SELECT id, views FROM app.recipes ORDER BY id").fetchall() == [(1, 1), (2, 1)]
    assert [r[0] for r in db.execute("SELECT slug FROM tally.trending('recipe', '7d', 10)")] == ["pancakes"]
    assert scalar(db, "SELECT views FROM tally.counters_live WHERE target_type = 'recipe' AND target_id = '1'") == 1


def test_registering_keeps_every_grant_of_the_rebuilt_views(db, connect):
    db.execute(RECIPES)
    db.execute(GRANTS)
    register(db)
    app = connect(APP_LOGIN)
    assert app.execute("SELECT target_id, views FROM tally.counters_live WHERE target_type = 'recipe' "
                       "ORDER BY target_id").fetchall() == [("1", 0), ("2", 0)]
    assert app.execute("SELECT count(*) FROM tally.trending('recipe', '7d', 10)").fetchone() == (0,)


def test_registering_a_table_without_counter_columns_is_refused_with_the_statement_that_fixes_it(db):
    db.execute("CREATE TABLE public.bare_things (id text PRIMARY KEY, slug text)")
    with pytest.raises(errors.UndefinedColumn) as raised:
        db.execute("SELECT tally.register_target_type('thing', 'public.bare_things')")
    hint = raised.value.diag.message_hint
    assert hint == ("ALTER TABLE public.bare_things ADD COLUMN views bigint NOT NULL DEFAULT 0, "
                    "ADD COLUMN copies bigint NOT NULL DEFAULT 0, ADD COLUMN downloads bigint NOT NULL DEFAULT 0, "
                    "ADD COLUMN uses bigint NOT NULL DEFAULT 0, "
                    "ADD COLUMN counters_refreshed_at timestamp with time zone")
    db.execute(hint)
    db.execute("GRANT SELECT, UPDATE ON public.bare_things TO tally_host_access")
    db.execute("SELECT tally.register_target_type('thing', 'public.bare_things')")


@pytest.mark.parametrize(("setup", "fix"), [
    ("ALTER TABLE app.recipes ALTER COLUMN views DROP NOT NULL", "ALTER COLUMN views SET NOT NULL"),
    ("ALTER TABLE app.recipes ALTER COLUMN copies DROP DEFAULT", "ALTER COLUMN copies SET DEFAULT 0"),
    ("ALTER TABLE app.recipes ALTER COLUMN uses TYPE integer", "ALTER COLUMN uses TYPE bigint"),
])
def test_counters_that_are_not_bigint_not_null_default_0_are_refused(db, setup, fix):
    error = refusal(db, setup)
    assert isinstance(error, errors.DatatypeMismatch)
    assert fix in error.diag.message_hint
    db.execute(error.diag.message_hint)  # the hint is exactly what fixes it
    register(db)


def test_nullable_counter_would_otherwise_stay_null(db):
    # The failure mode the check prevents: NULL + n is NULL, and the rollup would report ok.
    error = refusal(db, "ALTER TABLE app.recipes ALTER COLUMN views DROP NOT NULL; "
                        "UPDATE app.recipes SET views = NULL")
    db.execute(error.diag.message_hint)
    register(db)
    log(db, "recipe", "1", "view", session_id="s")
    db.execute("SELECT tally.rollup()")
    assert scalar(db, "SELECT views FROM app.recipes WHERE id = 1") == 1


def test_missing_grants_are_refused_with_the_exact_statements_to_run(db):
    db.execute(RECIPES)
    with pytest.raises(errors.InsufficientPrivilege) as raised:
        register(db)
    assert raised.value.diag.message_primary == "tally_host_access cannot read and update app.recipes"
    assert raised.value.diag.message_hint == GRANTS
    db.execute(raised.value.diag.message_hint)
    register(db)


def test_missing_schema_usage_alone_is_named(db):
    error = refusal(db, "REVOKE USAGE ON SCHEMA app FROM tally_host_access")
    assert isinstance(error, errors.InsufficientPrivilege)
    assert error.diag.message_hint == "GRANT USAGE ON SCHEMA app TO tally_host_access;"


@pytest.mark.parametrize(("setup", "table", "error", "hint"), [
    ("CREATE VIEW app.recipe_view AS SELECT * FROM app.recipes", "app.recipe_view", errors.WrongObjectType, None),
    ("ALTER TABLE app.recipes DROP CONSTRAINT recipes_pkey", "app.recipes", errors.InvalidColumnReference,
     "ALTER TABLE app.recipes ADD UNIQUE (id)"),
    ("CREATE DOMAIN app.recipe_id AS bigint; ALTER TABLE app.recipes ALTER COLUMN id TYPE app.recipe_id",
     "app.recipes", errors.DatatypeMismatch, None),
])
def test_tables_that_could_run_foreign_code_or_miscount_are_refused(db, setup, table, error, hint):
    raised = refusal(db, setup, table)
    assert isinstance(raised, error)
    if hint:
        assert raised.diag.message_hint == hint


def test_refusals_leave_the_registry_unchanged(db):
    refusal(db, "ALTER TABLE app.recipes ALTER COLUMN views DROP NOT NULL")
    assert scalar(db, "SELECT count(*) FROM tally.target_types WHERE target_type = 'recipe'") == 0


def test_concurrent_registrations_take_turns_and_the_code_knows_every_type(db, connect):
    # Application instances that each register their types as they start: before the registry lock,
    # the second one failed with XX000 'tuple concurrently updated' (both replaced the same functions).
    recipes_and_dishes(db)
    first, second = connect(), connect()
    first.autocommit = False
    register(first)  # its transaction holds the rebuilt code, uncommitted
    outcome: list[object] = []
    thread = threading.Thread(target=register_dish, args=(second, outcome))
    thread.start()
    wait_until_blocked(db, second.info.backend_pid)
    first.commit()
    thread.join(30)
    assert outcome == ["registered"]
    # The second rebuild read the registry after the first committed: its code serves both types.
    assert log(db, "recipe", "1", "view", session_id="s") == "logged"
    assert log(db, "dish", "1", "view", session_id="s") == "logged"
    assert log(db, "dish", "9", "view", session_id="s") == "discarded_missing_target"
    assert scalar(db, "SELECT count(DISTINCT target_type) FROM tally.counters_live "
                      "WHERE target_type IN ('recipe', 'dish')") == 2


@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_registering_outside_read_committed_is_refused(db, connect, level):
    # Its snapshot could predate a registration committed while it waited for the lock.
    db.execute(RECIPES)
    db.execute(GRANTS)
    conn = connect()
    conn.autocommit = False
    conn.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
    with pytest.raises(errors.FeatureNotSupported) as raised:
        register(conn)
    conn.rollback()
    assert raised.value.diag.message_hint.endswith("BEGIN ISOLATION LEVEL READ COMMITTED")
    assert scalar(db, "SELECT count(*) FROM tally.target_types WHERE target_type = 'recipe'") == 0
    conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
    register(conn)
    conn.commit()
    assert log(db, "recipe", "1", "view", session_id="s") == "logged"


def test_a_table_registered_under_one_type_is_refused_under_another(db):
    # Both types' events would add to the same counters, which counters_live and trending count apart.
    db.execute(RECIPES)
    db.execute(GRANTS)
    register(db)
    with pytest.raises(errors.DuplicateObject) as raised:
        db.execute("SELECT tally.register_target_type('dish', 'app.recipes', slug_column => 'handle')")
    assert raised.value.diag.message_primary == "app.recipes is registered already, as target type 'recipe'"
    assert scalar(db, "SELECT count(*) FROM tally.target_types WHERE host_table = 'app.recipes'::regclass") == 1
    register(db)  # the same type again: an update, as before


def test_views_built_on_counters_live_and_trending_survive_registering_a_type(db):
    # Registering rebuilt the views with DROP VIEW, which refused (2BP01) once anything depended on them:
    # every registration and every migrate re-applying the registry's code failed.
    db.execute("CREATE SCHEMA reports; "
               "CREATE VIEW reports.busiest AS SELECT target_type, target_id, views FROM tally.counters_live; "
               "CREATE VIEW reports.hot AS SELECT target_type, target_id, score FROM tally.trending_7d")
    db.execute(RECIPES)
    db.execute(GRANTS)
    register(db)
    assert log(db, "recipe", "1", "view", session_id="s") == "logged"
    db.execute("SELECT tally.rollup()")
    assert db.execute("SELECT target_id, views FROM reports.busiest WHERE target_type = 'recipe' "
                      "ORDER BY target_id").fetchall() == [("1", 1), ("2", 0)]
    assert db.execute("SELECT target_id FROM reports.hot WHERE target_type = 'recipe'").fetchall() == [("1",)]
    db.execute("SELECT tally.build_target_views()")  # as a migrate re-applying the file does
    assert scalar(db, "SELECT count(*) FROM reports.busiest WHERE target_type = 'recipe'") == 2


def test_registering_never_queues_readers_of_the_views_behind_a_long_query(db, connect):
    # Replacing a view takes ACCESS EXCLUSIVE: a request queued behind a long reader held up every new
    # reader of counters_live until that query ended. Now it waits at most 50 ms at a time, then 55P03;
    # and registering a type registered already (every application instance, as it starts) replaces
    # no view at all, so it goes through at once.
    recipes_and_dishes(db)
    register(db)
    long_reader, registrar, reader = connect(), connect(), connect()
    long_reader.autocommit = False
    long_reader.execute("SELECT count(*) FROM tally.counters_live")  # holds its lock to the end
    reader.execute("SET lock_timeout = '1s'")
    registrar.execute("SET lock_timeout = '1s'")
    register(registrar)  # the same type again: nothing to replace, no wait
    outcome: list[object] = []
    thread = threading.Thread(target=register_dish, args=(registrar, outcome))
    thread.start()
    reads = 0
    while thread.is_alive():
        reader.execute("SELECT count(*) FROM tally.counters_live")  # 55P03 if queued for 1 s
        reads += 1
    thread.join()
    assert reads > 10
    assert len(outcome) == 1 and isinstance(outcome[0], errors.LockNotAvailable)
    assert outcome[0].diag.message_primary == ("tally.counters_live or a trending view stayed in use; "
                                               "nothing was changed")
    assert scalar(db, "SELECT count(*) FROM tally.target_types WHERE target_type = 'dish'") == 0
    assert scalar(registrar, "SHOW lock_timeout") == "1s"
    long_reader.rollback()
    register_dish(registrar, outcome)
    assert outcome[-1] == "registered"
    assert scalar(db, "SELECT count(*) FROM tally.counters_live WHERE target_type = 'dish'") == 2
