"""The target registry: a host application attaches its own table, with its own key type."""

import pytest
from psycopg import errors

from tests.conftest import log, scalar

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


def register(db):
    db.execute("""SELECT tally.register_target_type(target_type => 'recipe', host_table => 'app.recipes',
        key_column => 'id', slug_column => 'handle', owner_column => 'author', visibility_column => 'state',
        visible_values => '{live}', listed_values => '{live}', owner_only_values => '{hidden}')""")


def test_registered_table_is_validated_counted_and_trending(db):
    db.execute(RECIPES)
    db.execute("GRANT USAGE ON SCHEMA app TO tally_owner; GRANT SELECT, UPDATE ON app.recipes TO tally_owner")
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


def test_registering_a_table_without_counter_columns_is_refused(db):
    db.execute("CREATE TABLE public.bare_things (id text PRIMARY KEY, slug text)")
    with pytest.raises(errors.UndefinedColumn):
        db.execute("SELECT tally.register_target_type('thing', 'public.bare_things')")


def test_registering_a_table_tally_owner_cannot_update_is_refused(db):
    db.execute(RECIPES)
    with pytest.raises(errors.InsufficientPrivilege):
        register(db)
