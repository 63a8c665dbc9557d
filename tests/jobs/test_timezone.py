"""Partition bounds, days and windows are UTC whatever the session's TimeZone: migrations, housekeeping
and the rollup run under a non-UTC zone and then under UTC without overlapping or shifted bounds."""

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from harness.migrate import migrate
from tests.conftest import scalar

ZONES = ["America/Sao_Paulo", "Asia/Kolkata", "Pacific/Kiritimati"]


def bounds(conn):
    """Every monthly partition's bounds, as UTC text."""
    conn.execute("SET TimeZone = 'UTC'")
    return conn.execute("""
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits AS i
        JOIN pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'tally.events'::regclass AND c.relname <> 'events_default' ORDER BY 1""").fetchall()


@pytest.mark.parametrize("zone", ZONES)
def test_migrate_housekeeping_and_rollup_under_a_non_utc_zone(blank_dsn, zone):
    local = make_conninfo(blank_dsn, options=f"-c TimeZone={zone}")
    migrate(local)
    with psycopg.connect(local, autocommit=True) as conn:
        conn.execute("UPDATE tally.settings SET partitions_ahead = 4, clock_override = true")
        conn.execute("INSERT INTO tally.snippets (id, slug) VALUES ('s', 's')")
        # Just before a UTC month ends, which is already (or not yet) the next month locally.
        conn.execute("SELECT set_config('tally.clock', '2026-11-30 23:30:00+00', false)")
        assert scalar(conn, "SELECT tally.log_event('snippet', 's', 'copy')::text") == "logged"
        result = scalar(conn, "SELECT tally.housekeeping()")
        assert result["partitions_created"] >= 1
        assert scalar(conn, "SELECT status FROM tally.rollup()") == "ok"
        assert conn.execute("SELECT day::text, count FROM tally.daily_counts").fetchall() == [("2026-11-30", 1)]
        assert scalar(conn, "SELECT count(*) FROM tally.events_p2026_11") == 1
    with psycopg.connect(make_conninfo(blank_dsn, options="-c TimeZone=UTC"), autocommit=True) as conn:
        conn.execute("UPDATE tally.settings SET clock_override = false")
        scalar(conn, "SELECT tally.housekeeping()")  # would fail on overlapping bounds
        for name, bound in bounds(conn):
            month = name.removeprefix("events_p").replace("_", "-")
            assert bound.startswith(f"FOR VALUES FROM ('{month}-01 00:00:00+00')"), (name, bound)
