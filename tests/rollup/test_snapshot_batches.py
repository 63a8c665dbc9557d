"""Rollup batches by snapshot difference: an open transaction delays only its own events, and a
transaction that commits late is counted exactly once; one that rolls back never is."""

import psycopg
import pytest

from tests.conftest import CLUSTER, log, scalar


def rollup(conn):
    return conn.execute("SELECT status, events FROM tally.rollup()").fetchone()


def copies(db, sid):
    return scalar(db, "SELECT copies FROM tally.snippets WHERE id = %s", [sid])


def test_idle_transaction_of_another_role_in_another_database_delays_nothing(db, targets):
    sid = targets()
    with psycopg.connect(CLUSTER.dsn("postgres")) as stranger:  # not autocommit: BEGIN is implicit
        stranger.execute("SELECT pg_current_xact_id()")  # holds an xid, as an idle-in-transaction app would
        log(db, "snippet", sid, "copy")
        assert rollup(db) == ("ok", 1)
        assert copies(db, sid) == 1
        stranger.rollback()


def test_a_transaction_open_across_five_rollups_is_counted_once_after_it_commits(db, targets, connect):
    sid, other = targets(), targets()
    late = connect()
    late.autocommit = False
    log(late, "snippet", sid, "copy")
    for i in range(5):
        log(db, "snippet", other, "copy")
        assert rollup(db) == ("ok", 1), f"rollup {i} waited for the open transaction"
    late.commit()
    assert rollup(db) == ("ok", 1)
    assert rollup(db) == ("ok", 0)
    assert (copies(db, sid), copies(db, other)) == (1, 5)
    assert scalar(db, "SELECT sum(count) FROM tally.daily_counts") == 6


def test_a_transaction_that_rolls_back_is_never_counted(db, targets, connect):
    sid = targets()
    doomed = connect()
    doomed.autocommit = False
    log(doomed, "snippet", sid, "copy")
    assert rollup(db) == ("ok", 0)
    doomed.rollback()
    log(db, "snippet", sid, "copy")
    assert rollup(db) == ("ok", 1)
    assert rollup(db) == ("ok", 0)
    assert copies(db, sid) == 1


def test_counters_live_and_job_status_see_events_of_a_late_commit_as_pending(db, targets, connect):
    sid = targets()
    late = connect()
    late.autocommit = False
    log(late, "snippet", sid, "copy")
    late_pid = late.info.backend_pid
    log(db, "snippet", sid, "copy")
    assert rollup(db) == ("ok", 1)
    status = db.execute("SELECT pending_events, oldest_open_xact_pid, oldest_open_xact_age > interval '0' "
                        "FROM tally.job_status").fetchone()
    assert status == (0, late_pid, True)
    late.commit()
    assert db.execute("SELECT copies, pending FROM tally.counters_live WHERE target_id = %s", [sid]).fetchone() \
        == (2, 1)
    assert scalar(db, "SELECT pending_events FROM tally.job_status") == 1
    assert rollup(db) == ("ok", 1)
    assert db.execute("SELECT oldest_open_xact_pid FROM tally.job_status").fetchone() == (None,)


@pytest.mark.parametrize("rollups_in_between", [0, 1, 3])
def test_interleaved_commits_are_each_counted_once(db, targets, connect, rollups_in_between):
    sid = targets()
    sessions = [connect() for _ in range(4)]
    for conn in sessions:
        conn.autocommit = False
        log(conn, "snippet", sid, "copy")
    for conn in reversed(sessions):  # commit in the opposite order of their transaction ids
        conn.commit()
        for _ in range(rollups_in_between):
            rollup(db)
    rollup(db)
    assert copies(db, sid) == 4
    assert scalar(db, "SELECT tally.rebuild_counters()") == 0


def test_a_transaction_that_began_before_a_rollup_logs_after_it_and_is_counted_once(db, targets, connect):
    # Its id is below the rollup's xmax (settings.rolled_up_xmax): log_event reads the snapshot, finds it
    # in progress there, and stores the event.
    sid = targets()
    early = connect()
    early.autocommit = False
    early.execute("SELECT pg_current_xact_id()")
    log(db, "snippet", sid, "copy")
    assert rollup(db) == ("ok", 1)
    assert scalar(early, "SELECT pg_current_xact_id()::text::bigint < rolled_up_xmax FROM tally.settings")
    assert log(early, "snippet", sid, "copy") == "logged"
    early.commit()
    assert rollup(db) == ("ok", 1)
    assert copies(db, sid) == 2


@pytest.mark.parametrize("later_transaction_ends", [False, True])
def test_events_logged_around_a_rollup_in_one_transaction_are_each_counted_once(
    db, targets, connect, later_transaction_ends
):
    # pg_current_snapshot() never lists the calling transaction as in progress: once a transaction that
    # began after it has ended, the caller looks committed, and an event it logged after its own rollup
    # was taken as rolled up and never counted.
    sid = targets()
    caller = connect()
    caller.autocommit = False
    log(caller, "snippet", sid, "copy")
    if later_transaction_ends:
        db.execute("SELECT pg_current_xact_id()")
    assert rollup(caller) == ("ok", 0)  # its own event waits for its commit
    log(caller, "snippet", sid, "copy")
    assert rollup(caller) == ("ok", 0)
    caller.commit()
    assert rollup(db) == ("ok", 2)
    assert rollup(db) == ("ok", 0)
    assert copies(db, sid) == 2
    assert scalar(db, "SELECT tally.rebuild_counters()") == 0


@pytest.mark.parametrize("snapshot, xid", [
    ("100:110:103,105", 104), ("100:110:", 100), ("100:110:", 109), ("100:110:103", 111), ("100:110:", 99),
    ("100:110:103", 103),
])
def test_mark_running_hides_exactly_the_given_transaction(db, snapshot, xid):
    marked = scalar(db, "SELECT tally.mark_running(%s::pg_snapshot, %s::text::xid8)::text", [snapshot, xid])
    changed = db.execute(
        "SELECT x FROM generate_series(90, 120) AS x"
        " WHERE pg_visible_in_snapshot(x::text::xid8, %s::pg_snapshot)"
        " IS DISTINCT FROM (x <> %s AND pg_visible_in_snapshot(x::text::xid8, %s::pg_snapshot))",
        [marked, xid, snapshot],
    ).fetchall()
    assert changed == []
    assert scalar(db, "SELECT tally.mark_running(%s::pg_snapshot, NULL)::text", [snapshot]) == snapshot
