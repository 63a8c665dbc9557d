"""pg_cron scheduling (here pg_cron lives in the cluster's `tally` database, so the per-test databases
reach it through dblink), job status, housekeeping and a real pg_cron-driven rollup."""

import threading
import time

import psycopg
import pytest
from psycopg import errors

from harness.migrate import migrate
from tests.conftest import CLUSTER, limit, log, scalar


@pytest.fixture
def cron():
    """A connection to pg_cron's own database."""
    with psycopg.connect(CLUSTER.dsn("tally"), autocommit=True) as conn:
        yield conn


@pytest.fixture
def scheduled(db):
    """Unschedules this database's jobs after the test, whatever happened."""
    yield db
    db.execute("SELECT tally.unschedule_jobs()")


def jobids(cron, dbname):
    return cron.execute("SELECT jobid FROM cron.job WHERE jobname LIKE %s ORDER BY jobid",
                        [f"tally\\_%@{dbname}"]).fetchall()


def jobs_of(cron, dbname):
    return cron.execute("SELECT jobname, schedule, command FROM cron.job "
                        "WHERE jobname LIKE %s ORDER BY jobname", [f"tally\\_%@{dbname}"]).fetchall()


def test_schedule_jobs_installs_rollup_housekeeping_and_pruning_once(scheduled, cron):
    db = scheduled
    dbname = db.info.dbname
    names = [r[0] for r in db.execute("SELECT * FROM tally.schedule_jobs()")]
    assert names == [f"tally_rollup@{dbname}", f"tally_housekeeping@{dbname}", f"tally_prune_runs@{dbname}"]
    ids = jobids(cron, dbname)
    db.execute("SELECT * FROM tally.schedule_jobs(rollup => '*/10 * * * *')")
    assert jobids(cron, dbname) == ids
    jobs = {name: (schedule, command, database) for name, schedule, command, database in cron.execute(
        "SELECT jobname, schedule, command, database FROM cron.job WHERE jobname LIKE %s", [f"tally\\_%@{dbname}"])}
    assert jobs[f"tally_rollup@{dbname}"] == ("*/10 * * * *", "CALL tally.rollup_job()", dbname)
    assert jobs[f"tally_housekeeping@{dbname}"] == ("17 3 * * *", "SELECT tally.housekeeping()", dbname)
    schedule, command, database = jobs[f"tally_prune_runs@{dbname}"]
    assert (schedule, database) == ("17 3 * * *", "tally")  # pg_cron's own database: no dblink needed
    assert command.startswith("DELETE FROM cron.job_run_details")


def test_jobs_scheduled_by_a_superuser_run_as_the_least_privileged_job_role(scheduled, cron):
    db = scheduled
    assert scalar(db, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    db.execute("SELECT * FROM tally.schedule_jobs()")
    users = cron.execute("SELECT DISTINCT username FROM cron.job WHERE jobname LIKE %s",
                         [f"tally\\_%@{db.info.dbname}"]).fetchall()
    assert users == [("tally_job",)]
    role = db.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles "
                      "WHERE rolname = 'tally_job'").fetchone()
    assert role == (False, False, False, False)
    granted = {r[0] for r in db.execute("""
        SELECT p.oid::regprocedure::text FROM pg_proc AS p
        WHERE p.pronamespace = 'tally'::regnamespace AND has_function_privilege('tally_job', p.oid, 'EXECUTE')""")}
    assert granted == {"tally.rollup_job()", "tally.rollup()", "tally.housekeeping()"}
    readable = db.execute("""
        SELECT c.relname FROM pg_class AS c
        WHERE c.relnamespace = 'tally'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND has_table_privilege('tally_job', c.oid, 'SELECT, INSERT, UPDATE, DELETE')""").fetchall()
    assert readable == []
    assert db.execute("SELECT count(*) FROM tally.job_status").fetchone() == (3,)


def test_jobs_an_earlier_release_scheduled_as_the_superuser_are_replaced(scheduled, cron):
    db = scheduled
    name = f"tally_rollup@{db.info.dbname}"
    cron.execute("SELECT cron.schedule_in_database(%s, '* * * * *', 'CALL tally.rollup_job()', %s)",
                 [name, db.info.dbname])
    db.execute("SELECT * FROM tally.schedule_jobs()")
    assert cron.execute("SELECT username FROM cron.job WHERE jobname = %s", [name]).fetchall() == [("tally_job",)]


def test_unschedule_jobs_removes_only_this_databases_jobs(scheduled, cron):
    db = scheduled
    db.execute("SELECT * FROM tally.schedule_jobs()")
    db.execute("SELECT tally.unschedule_jobs()")
    assert jobs_of(cron, db.info.dbname) == []


def test_invalid_schedule_is_refused(scheduled):
    with pytest.raises(psycopg.Error):
        scheduled.execute("SELECT * FROM tally.schedule_jobs(rollup => 'every now and then')")


def test_job_status_lists_jobs_and_rollup_lag(scheduled, targets, clock):
    db = scheduled
    db.execute("SELECT * FROM tally.schedule_jobs()")
    sid = targets()
    clock(db, "2026-11-25 10:00:00+00")
    log(db, "snippet", sid, "copy")
    rows = db.execute("SELECT jobname, schedule, pending_events, rollup_lag > interval '0' "
                      "FROM tally.job_status ORDER BY jobname").fetchall()
    assert [(r[1], r[2], r[3]) for r in rows] == [("17 3 * * *", 1, True), ("17 3 * * *", 1, True),
                                                  ("*/5 * * * *", 1, True)]
    db.execute("SELECT tally.rollup()")
    row = db.execute("SELECT DISTINCT pending_events, rollup_lag, last_rollup_status FROM tally.job_status").fetchall()
    assert row == [(0, None, "ok")]


def test_job_status_has_a_row_without_any_job(db):
    assert db.execute("SELECT jobname, pending_events FROM tally.job_status").fetchall() == [(None, 0)]


def test_scheduling_without_pg_cron_raises_55000(db):
    db.execute("DROP EXTENSION dblink")  # pg_cron lives in another database and is now out of reach
    assert scalar(db, "SELECT tally.cron_location()") is None
    with pytest.raises(errors.ObjectNotInPrerequisiteState, match="pg_cron is not available"):
        db.execute("SELECT * FROM tally.schedule_jobs()")
    assert db.execute("SELECT jobname FROM tally.job_status").fetchall() == [(None,)]


def test_scheduling_where_pg_cron_is_local(cron):
    migrate(CLUSTER.dsn("tally"))
    try:
        assert scalar(cron, "SELECT tally.cron_location()") == "local"
        cron.execute("SELECT * FROM tally.schedule_jobs()")
        assert [r[0] for r in jobs_of(cron, "tally")] == \
            ["tally_housekeeping@tally", "tally_prune_runs@tally", "tally_rollup@tally"]
    finally:
        cron.execute("SELECT tally.unschedule_jobs()")
    assert jobs_of(cron, "tally") == []


def test_prune_job_runs_deletes_old_run_details_of_tally_jobs_only(scheduled, cron):
    db = scheduled
    db.execute("SELECT * FROM tally.schedule_jobs()")
    jobid = scalar(cron, "SELECT jobid FROM cron.job WHERE jobname = %s", [f"tally_rollup@{db.info.dbname}"])
    other = scalar(cron, "SELECT cron.schedule('not-tally-job', '0 0 1 1 *', 'SELECT 1')")
    try:
        for job in (jobid, other):
            cron.execute(
                "INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status,"
                " return_message, start_time, end_time) VALUES (%s, nextval('cron.runid_seq'), 0, 'x', 'x', 'x',"
                " 'succeeded', '', now() - interval '40 days', now() - interval '40 days')", [job])
        db.execute("SELECT tally.prune_job_runs()")
        remaining = dict(cron.execute("SELECT jobid, count(*) FROM cron.job_run_details WHERE jobid IN (%s, %s) "
                                      "GROUP BY jobid", [jobid, other]).fetchall())
        assert remaining == {other: 1}
    finally:
        cron.execute("DELETE FROM cron.job_run_details WHERE jobid = %s", [other])
        cron.execute("SELECT cron.unschedule(%s)", [other])


def test_rollup_job_procedure_rolls_up_then_refreshes_trending(db, targets):
    sid = targets(slug="via-job")
    log(db, "snippet", sid, "copy")
    db.execute("CALL tally.rollup_job()")
    assert scalar(db, "SELECT copies FROM tally.snippets WHERE id = %s", [sid]) == 1
    assert [r[0] for r in db.execute("SELECT slug FROM tally.trending('snippet')")] == ["via-job"]


def test_rollup_job_fails_when_the_rollup_fails(db, targets):
    log(db, "snippet", targets(), "copy")
    db.execute("ALTER TABLE tally.daily_counts ADD CONSTRAINT broken CHECK (count < 0) NOT VALID")
    with pytest.raises(psycopg.errors.RaiseException, match=r"tally\.rollup failed: 23514"):
        db.execute("CALL tally.rollup_job()")
    assert db.execute("SELECT status FROM tally.rollup_runs").fetchall() == [("failed",)]


@pytest.mark.cron
def test_pg_cron_itself_runs_the_rollup_job_as_the_job_role(scheduled, targets, cron):
    db = scheduled
    sid = targets()
    for _ in range(3):
        log(db, "snippet", sid, "copy")
    db.execute("SELECT * FROM tally.schedule_jobs(rollup => '* * * * *')")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if scalar(db, "SELECT copies FROM tally.snippets WHERE id = %s", [sid]) == 3:
            break
        time.sleep(1)
    assert scalar(db, "SELECT copies FROM tally.snippets WHERE id = %s", [sid]) == 3
    status = db.execute("SELECT last_status FROM tally.job_status WHERE jobname LIKE 'tally_rollup@%%'").fetchone()
    assert status in {("succeeded",), ("running",)}
    assert scalar(cron, "SELECT DISTINCT d.username FROM cron.job_run_details AS d JOIN cron.job AS j USING (jobid) "
                        "WHERE j.jobname = %s", [f"tally_rollup@{db.info.dbname}"]) == "tally_job"


def test_housekeeping_creates_partitions_ahead(db):
    db.execute("UPDATE tally.settings SET partitions_ahead = 6")
    created = scalar(db, "SELECT (tally.housekeeping() ->> 'partitions_created')::int")
    assert created == 3
    assert scalar(db, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'tally.events'::regclass") >= 9


def event_rolled_up_in_february(db, targets, clock):
    """A rolled-up copy in events_p2026_02, seen from 2026-11-25: that partition is past event_retention."""
    sid = targets()
    db.execute("SELECT tally.create_partitions(since => '2026-01-01')")
    clock(db, "2026-02-10 10:00+00")
    log(db, "snippet", sid, "copy")
    db.execute("SELECT tally.rollup()")
    clock(db, "2026-11-25 10:00+00")
    return sid


def test_housekeeping_drops_rolled_up_partitions_past_retention(db, targets, clock):
    sid = event_rolled_up_in_february(db, targets, clock)
    result = scalar(db, "SELECT tally.housekeeping()")
    assert "events_p2026_02" in result["partitions_dropped"]
    assert "events_p2026_10" not in result["partitions_dropped"]
    assert scalar(db, "SELECT copies FROM tally.snippets WHERE id = %s", [sid]) == 1
    assert scalar(db, "SELECT sum(count) FROM tally.daily_counts") == 1


def test_housekeeping_keeps_partitions_with_events_not_rolled_up(db, targets, clock):
    sid = targets()
    db.execute("SELECT tally.create_partitions(since => '2026-01-01')")
    clock(db, "2026-02-10 10:00+00")
    log(db, "snippet", sid, "copy")
    clock(db, "2026-11-25 10:00+00")
    result = scalar(db, "SELECT tally.housekeeping()")
    assert "events_p2026_02" not in result["partitions_dropped"]


def test_events_outside_any_partition_land_in_default_and_move_later(db, targets, clock):
    sid = targets()
    clock(db, "2025-03-10 10:00+00")
    assert log(db, "snippet", sid, "copy") == "logged"
    assert scalar(db, "SELECT count(*) FROM tally.events_default") == 1
    db.execute("SELECT tally.create_partitions(since => '2025-03-01')")
    assert scalar(db, "SELECT count(*) FROM tally.events_default") == 0
    assert scalar(db, "SELECT count(*) FROM tally.events_p2025_03") == 1


def upkeep_beside_an_open_transaction(db, targets, connect, upkeep):
    """Runs upkeep(conn) while another transaction that logged an event stays open, and logs from a third
    connection meanwhile; returns upkeep's result and the holder (still open)."""
    holder, runner, writer = connect(), connect(), connect()
    holder.execute("BEGIN")
    assert log(holder, "snippet", targets(), "copy") == "logged"  # ROW EXCLUSIVE on tally.events, to its end
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(upkeep(runner)))
    thread.start()
    time.sleep(0.3)
    # Queued behind the holder, upkeep's lock request used to hold this call up as long as the holder stayed open.
    writer.execute("SET statement_timeout = '3s'")
    for _ in range(5):
        assert log(writer, "snippet", targets(), "copy") == "logged"
        time.sleep(0.2)
    thread.join(30)
    return result, holder


def test_creating_partitions_never_stalls_ingestion_behind_an_open_transaction(db, targets, connect):
    result, holder = upkeep_beside_an_open_transaction(
        db, targets, connect, lambda conn: scalar(conn, "SELECT tally.create_partitions(ahead => 40)"))
    assert result == [0]  # the table was busy: left to the next run
    holder.execute("COMMIT")
    assert scalar(db, "SELECT tally.create_partitions(ahead => 40)") > 0


def test_dropping_partitions_never_stalls_ingestion_behind_an_open_transaction(db, targets, connect, clock):
    event_rolled_up_in_february(db, targets, clock)
    result, holder = upkeep_beside_an_open_transaction(
        db, targets, connect, lambda conn: scalar(conn, "SELECT tally.housekeeping()"))
    assert "events_p2026_02" in result[0]["partitions_kept_busy"]
    assert "events_p2026_02" not in result[0]["partitions_dropped"]
    holder.execute("COMMIT")
    assert "events_p2026_02" in scalar(db, "SELECT tally.housekeeping()")["partitions_dropped"]


def test_housekeeping_and_a_rollup_making_the_same_salt_never_deadlock(db, connect):
    # A rollup holds its lock while it makes the salts of the days ahead; housekeeping makes them too,
    # then takes the rollup's lock for the trending windows' daily step. It waited for that lock holding
    # the salt the rollup then waited for: a lock cycle that failed one of them with 40P01.
    roller, keeper = connect(), connect()
    roller.autocommit = False
    roller.execute("SELECT tally.rollup()")  # holds the rollup's lock until it commits
    db.execute("DELETE FROM tally.visitor_salts WHERE day = (now() AT TIME ZONE 'UTC')::date + 2")
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(scalar(keeper, "SELECT tally.housekeeping()")))
    thread.start()
    deadline = time.monotonic() + 10  # it makes the salt, then would wait for the rollup's lock
    while not done and time.monotonic() < deadline and not scalar(
            db, "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [keeper.info.backend_pid]):
        time.sleep(0.02)
    assert scalar(roller, "SELECT tally.prepare_salts()") == 0  # waits for housekeeping's salt, not a cycle
    roller.commit()
    thread.join(timeout=20)
    assert done and done[0]["trending"] == "left to the running rollup", done
    assert done[0]["visitor_salts_created"] == 1


@pytest.mark.parametrize(("table", "first", "held", "housekeeping"), [
    # A counter of the window 10:00-10:01, which a transaction begun at 10:00:59 still adds to; a window
    # is pruned once it ended a whole window ago.
    ("rate_limit_state", "2026-03-02 10:00:10+00", "2026-03-02 10:00:59+00", "2026-03-02 10:02:30+00"),
    # Yesterday's debounce slot, which a view just after midnight re-claims (its window reaches back).
    ("debounce", "2026-03-01 23:35:00+00", "2026-03-02 00:10:00+00", "2026-03-02 00:12:00+00"),
])
def test_housekeeping_skips_rows_an_open_transaction_holds_instead_of_waiting(db, targets, connect, clock,
                                                                              table, first, held, housekeeping):
    limit(db, "view", user_limit=100)
    sid = targets()
    clock(db, first)
    assert log(db, "snippet", sid, "view", user_id="u1", session_id="s1") == "logged"
    clock(db, held)
    # As jobs do ahead: the transaction below makes no salt, and housekeeping no partition it would
    # wait for (briefly) behind the transaction.
    db.execute("SELECT tally.prepare_salts(), tally.create_partitions()")
    app = connect()
    app.autocommit = False
    clock(app, held)
    log(app, "snippet", sid, "view", user_id="u1", session_id="s1")  # holds the row to its end
    before = scalar(db, f"SELECT count(*) FROM tally.{table}")
    clock(db, housekeeping)
    db.execute("SET statement_timeout = '10s'")  # it waited for the transaction, before
    kept = scalar(db, "SELECT tally.housekeeping()")[table]
    assert scalar(db, f"SELECT count(*) FROM tally.{table}") == before - kept >= 1
    app.commit()


def test_housekeeping_keeps_a_rate_limit_window_until_it_ended_a_whole_window_ago(db, targets, clock):
    # Cron starts housekeeping on the minute, as one-minute windows end: a call begun a moment before
    # still adds to the window that just ended, and had housekeeping deleted that row first, the call
    # would wait for housekeeping's transaction to end.
    limit(db, "download", ip_limit=100)
    sid = targets()
    clock(db, "2026-03-02 10:00:59+00")
    log(db, "snippet", sid, "download", ip="203.0.113.5")
    for at, left in (("2026-03-02 10:01:00+00", 1), ("2026-03-02 10:01:59+00", 1), ("2026-03-02 10:02:01+00", 0)):
        clock(db, at)
        db.execute("SELECT tally.housekeeping()")
        assert scalar(db, "SELECT count(*) FROM tally.rate_limit_state") == left, at
