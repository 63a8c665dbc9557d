"""tally.live_counters(): counters_live for the given targets, by index probes, whatever the host table's size."""

import pytest
from psycopg import errors

from tests.conftest import APP_LOGIN, log, nested_plans
from tests.rollup.test_locked_host_rows import hold
from tests.rollup.test_rollup import rollup

LIVE = "SELECT target_id, slug, views, copies, downloads, uses, pending FROM tally.live_counters(%s, %s) ORDER BY 1"
VIEW = ("SELECT target_id, slug, views, copies, downloads, uses, pending FROM tally.counters_live "
        "WHERE target_type = %s AND target_id = ANY (%s) ORDER BY 1")


def test_live_counters_agree_with_counters_live(db, targets, connect):
    rolled, pending, deferred, quiet = (targets(slug=s) for s in ("rolled", "pending", "deferred", "quiet"))
    for target in (rolled, deferred, deferred):
        log(db, "snippet", target, "copy")
    holder = hold(connect, deferred)
    rollup(db)  # deferred's two copies wait in the backlog
    log(db, "snippet", rolled, "download")
    log(db, "snippet", pending, "view", session_id="s")
    ids = [rolled, pending, deferred, quiet, "no-such-target"]
    app = connect(APP_LOGIN)
    live = app.execute(LIVE, ["snippet", ids]).fetchall()
    assert live == db.execute(VIEW, ["snippet", ids]).fetchall()
    assert {row[0]: row[2:] for row in live} == {
        rolled: (0, 1, 1, 0, 1), pending: (1, 0, 0, 0, 1), deferred: (0, 2, 0, 0, 0), quiet: (0, 0, 0, 0, 0)}
    holder.execute("COMMIT")


def test_live_counters_probe_the_host_index_instead_of_reading_every_row(db, targets):
    sid = targets()
    db.execute("INSERT INTO tally.snippets (id, slug) "
               "SELECT 'bulk-' || g, 'bulk-' || g FROM generate_series(1, 5000) AS g")
    db.execute("ANALYZE tally.snippets")
    plans = nested_plans(db, lambda: db.execute(LIVE, ["snippet", [sid]]).fetchall())
    assert "Index Scan using snippets_pkey on snippets" in plans
    assert "Seq Scan on snippets" not in plans


def test_live_counters_find_a_numeric_target_by_any_spelling_and_refuse_bad_input(db):
    db.execute("""
        CREATE SCHEMA app;
        CREATE TABLE app.recipes (id bigint PRIMARY KEY, slug text, views bigint NOT NULL DEFAULT 0,
            copies bigint NOT NULL DEFAULT 0, downloads bigint NOT NULL DEFAULT 0, uses bigint NOT NULL DEFAULT 0,
            counters_refreshed_at timestamptz);
        INSERT INTO app.recipes (id, slug) VALUES (43, 'soup');
        GRANT USAGE ON SCHEMA app TO tally_host_access;
        GRANT SELECT (id, slug, views, copies, downloads, uses),
            UPDATE (views, copies, downloads, uses, counters_refreshed_at) ON app.recipes TO tally_host_access;
        SELECT tally.register_target_type('recipe', 'app.recipes');
    """)
    log(db, "recipe", "43", "copy")
    assert db.execute(LIVE, ["recipe", ["043"]]).fetchall() == [("43", "soup", 0, 1, 0, 0, 1)]
    with pytest.raises(errors.InvalidTextRepresentation):
        db.execute(LIVE, ["recipe", ["soup"]])
    with pytest.raises(errors.InvalidParameterValue, match="unknown target type"):
        db.execute(LIVE, ["dish", ["1"]])
    with pytest.raises(errors.InvalidParameterValue, match="at most 1000"):
        db.execute(LIVE, ["recipe", [str(i) for i in range(1001)]])
