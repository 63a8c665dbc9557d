"""A database moved to another cluster with pg_dump and pg_restore keeps the transaction ids of the
cluster it came from. Restored into a cluster whose ids are behind them, nothing is logged and the
rollup fails (55000) until tally.after_restore() has moved the restored events into this cluster's
ids; then every event counts exactly once. A restore into a cluster that is ahead needs nothing."""

import json
import subprocess

import psycopg
import pytest

from harness.cluster import bindir
from tests.conftest import CLUSTER, log, scalar

# The state a dump of a cluster that was at transaction 9,000,000,010 carries: 9,000,000,005 was
# still running at its last rollup. This cluster (the harness's) is far behind that.
AHEAD = "9000000000:9000000010:9000000005"


def copies(conn, sid):
    return scalar(conn, "SELECT copies FROM tally.snippets WHERE id = %s", [sid])


def rollup(conn):
    return conn.execute("SELECT status, events, error FROM tally.rollup()").fetchone()


def restore_state(db, snapshot, txids):
    """What pg_restore leaves: the other cluster's rollup state, and its events with their txids (the
    dump's data is loaded before its triggers are created, so no trigger sees them)."""
    with db.transaction():
        db.execute("SET LOCAL session_replication_role = replica")
        db.execute("UPDATE tally.rollup_state SET snapshot = %s::pg_snapshot,"
                   " rolled_up_below = pg_snapshot_xmin(%s::pg_snapshot)::text::bigint", [snapshot, snapshot])
        db.execute("UPDATE tally.settings SET rolled_up_xmax = pg_snapshot_xmax(%s::pg_snapshot)::text::bigint",
                   [snapshot])
        for txid, target in txids:
            db.execute("INSERT INTO tally.events (created_at, target_type, target_id, kind, txid)"
                       " VALUES (now(), 'snippet', %s, 'copy', %s)", [target, txid])


def test_nothing_is_logged_while_the_restored_state_is_ahead(db, targets):
    sid = targets()
    restore_state(db, AHEAD, [])
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="after_restore"):
        log(db, "snippet", sid, "copy")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="after_restore"):
        db.execute("SELECT * FROM tally.log_events(%s::jsonb)",
                   [json.dumps([{"target_type": "snippet", "target_id": sid, "kind": "copy"}])])
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="after_restore"):
        db.execute("INSERT INTO tally.events (created_at, target_type, target_id, kind)"
                   " VALUES (now(), 'snippet', %s, 'copy')", [sid])
    assert scalar(db, "SELECT count(*) FROM tally.events") == 0


def test_the_rollup_fails_while_the_restored_state_is_ahead_and_job_status_says_why(db, targets):
    sid = targets()
    restore_state(db, AHEAD, [(9000000012, sid)])
    status, events, error = rollup(db)
    assert (status, events) == ("failed", 0)
    assert error.startswith("55000: the rollup state is ahead of this cluster's transaction ids")
    assert scalar(db, "SELECT last_rollup_error FROM tally.job_status") == error
    assert copies(db, sid) == 0


def test_after_restore_counts_what_the_other_cluster_had_not_rolled_up_once_and_the_rest_never(db, targets):
    sid = targets()
    rolled_up = [8999999000, 9000000003, 40]  # below its xmin; visible in its snapshot; below ours too
    not_rolled_up = [9000000005, 9000000012]  # running at its last rollup; begun after it
    restore_state(db, AHEAD, [(txid, sid) for txid in rolled_up + not_rolled_up])
    db.execute("UPDATE tally.snippets SET copies = 3 WHERE id = %s", [sid])  # as the other cluster counted
    assert scalar(db, "SELECT tally.after_restore()") == 4  # 40 stays: below every id a rollup here reads
    assert rollup(db) == ("ok", 2, None)
    assert copies(db, sid) == 5
    assert log(db, "snippet", sid, "copy") == "logged"
    assert rollup(db) == ("ok", 1, None)
    assert rollup(db) == ("ok", 0, None)
    assert copies(db, sid) == 6
    assert scalar(db, "SELECT tally.after_restore()") == 0


def test_after_restore_changes_nothing_in_the_cluster_that_took_the_snapshot(db, targets, connect):
    sid = targets()
    open_transaction = connect()
    open_transaction.autocommit = False
    log(open_transaction, "snippet", sid, "copy")  # in progress at the rollup: in its snapshot's list
    log(db, "snippet", sid, "copy")
    rollup(db)
    open_transaction.commit()  # (after_restore waits for transactions that inserted events)
    log(db, "snippet", sid, "copy")
    before = db.execute("SELECT (SELECT snapshot::text FROM tally.rollup_state),"
                        " (SELECT array_agg(txid ORDER BY id) FROM tally.events)").fetchone()
    assert scalar(db, "SELECT tally.after_restore()") == 0
    assert db.execute("SELECT (SELECT snapshot::text FROM tally.rollup_state),"
                      " (SELECT array_agg(txid ORDER BY id) FROM tally.events)").fetchone() == before
    rollup(db)
    assert copies(db, sid) == 3


def test_a_restore_into_a_cluster_that_is_ahead_needs_nothing(db, targets):
    sid = targets()
    # A dump of a cluster that was at transaction 1,010, restored here (far ahead of it).
    restore_state(db, "1000:1010:1005", [(900, sid), (1005, sid), (1012, sid)])
    db.execute("UPDATE tally.snippets SET copies = 1 WHERE id = %s", [sid])
    assert log(db, "snippet", sid, "copy") == "logged"
    assert rollup(db) == ("ok", 3, None)
    assert copies(db, sid) == 4
    assert scalar(db, "SELECT tally.after_restore()") == 0


def test_pg_dump_and_pg_restore_into_a_new_cluster_count_every_event_once(db, dsn, targets, spare_cluster):
    """The whole move, as the README gives it, into a cluster just made (its ids start near 700)."""
    sid = targets()
    for _ in range(3):
        log(db, "snippet", sid, "copy")
    assert rollup(db) == ("ok", 3, None)
    for _ in range(2):
        log(db, "snippet", sid, "copy")  # committed, not rolled up when the dump is taken

    dump = spare_cluster.home / "tally.dump"
    subprocess.run([str(bindir() / "pg_dump"), "--format=custom", f"--file={dump}", dsn], check=True)
    roles = subprocess.run([str(bindir() / "pg_dumpall"), "--roles-only", f"--dbname={CLUSTER.dsn('postgres')}"],
                           check=True, capture_output=True, text=True).stdout
    # psql: the roles file has meta-commands; "role postgres already exists" is its one error.
    subprocess.run([str(bindir() / "psql"), "--quiet", spare_cluster.dsn("postgres")], input=roles, check=True,
                   capture_output=True, text=True)
    with psycopg.connect(spare_cluster.dsn("postgres"), autocommit=True) as admin:
        admin.execute("CREATE DATABASE moved")
    subprocess.run([str(bindir() / "pg_restore"), "--exit-on-error", f"--dbname={spare_cluster.dsn('moved')}",
                    str(dump)], check=True)

    with psycopg.connect(spare_cluster.dsn("moved"), autocommit=True) as moved:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            log(moved, "snippet", sid, "copy")
        assert rollup(moved)[0] == "failed"
        assert scalar(moved, "SELECT tally.after_restore()") == 5
        assert rollup(moved) == ("ok", 2, None)
        assert log(moved, "snippet", sid, "copy") == "logged"
        assert rollup(moved) == ("ok", 1, None)
        assert copies(moved, sid) == 6
        assert scalar(moved, "SELECT sum(count) FROM tally.daily_counts") == 6
        assert scalar(moved, "SELECT tally.rebuild_counters()") == 0
