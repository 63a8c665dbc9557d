"""Under concurrency nothing is lost and nothing is counted twice."""

import collections
import threading

from tests.conftest import log, run_together, scalar, wait_until_blocked

KINDS = ("view", "copy", "download", "template_use", "builder_export")


def test_ingestion_from_8_connections_during_50_rollups_counts_every_logged_event_once(db, targets, connect):
    db.execute("UPDATE tally.kinds SET ip_limit = NULL, user_limit = NULL")
    ids = [targets() for _ in range(6)]
    writers = [connect() for _ in range(8)]
    roller = connect()
    done = threading.Event()
    rollups = []

    def roll():
        while len(rollups) < 50 or not done.is_set():
            rollups.append(scalar(roller, "SELECT status FROM tally.rollup()"))

    def write(i):
        outcomes = collections.Counter()
        for n in range(150):
            target, kind = ids[(i + n) % len(ids)], KINDS[n % len(KINDS)]
            viewer = f"w{i}-{n % 40}"  # repeats: some views are debounced
            outcomes[(target, kind, log(writers[i], "snippet", target, kind, session_id=viewer))] += 1
        return outcomes

    thread = threading.Thread(target=roll)
    thread.start()
    results = run_together(8, write)
    done.set()
    thread.join()
    db.execute("SELECT tally.rollup()")
    assert len(rollups) >= 50 and set(rollups) <= {"ok", "skipped"}

    logged = collections.Counter()
    for outcome in results:
        for (target, kind, result), n in outcome.items():
            if result == "logged":
                logged[(target, kind)] += n
    assert sum(logged.values()) > 0
    events = dict(((t, k), n) for t, k, n in db.execute(
        "SELECT target_id, kind, count(*) FROM tally.events GROUP BY 1, 2"))
    daily = dict(((t, k), n) for t, k, n in db.execute(
        "SELECT target_id, kind, sum(count) FROM tally.daily_counts GROUP BY 1, 2"))
    assert events == daily == dict(logged)
    for target in ids:
        row = db.execute("SELECT views, copies, downloads, uses FROM tally.snippets WHERE id = %s", [target]).fetchone()
        expected = (logged[(target, "view")], logged[(target, "copy")], logged[(target, "download")],
                    logged[(target, "template_use")] + logged[(target, "builder_export")])
        assert row == expected


def test_two_rollups_started_at_the_same_instant_one_works_one_skips(db, targets, connect):
    sid = targets()
    for _ in range(5):
        log(db, "snippet", sid, "copy")
    conns = [connect(), connect()]
    # Each holds its transaction open after rolling up, so the loser cannot slip in after the winner.
    for conn in conns:
        conn.execute("BEGIN")
    statuses = run_together(2, lambda i: scalar(conns[i], "SELECT status FROM tally.rollup()"))
    for conn in conns:
        conn.execute("COMMIT")
    assert sorted(statuses) == ["ok", "skipped"]
    assert scalar(db, "SELECT copies FROM tally.snippets WHERE id = %s", [sid]) == 5
    assert scalar(db, "SELECT sum(count) FROM tally.daily_counts") == 5


def test_same_event_id_from_16_connections_records_once(db, targets, connect):
    sid = targets()
    conns = [connect() for _ in range(16)]
    event_id = "0b7c8a52-7f1e-4c55-9a55-3d0f5b8e2f10"
    outcomes = run_together(16, lambda i: log(conns[i], "snippet", sid, "download", event_id=event_id))
    assert sorted(outcomes) == ["duplicate"] * 15 + ["logged"]
    assert scalar(db, "SELECT count(*) FROM tally.events") == 1


def test_rate_limit_is_exact_under_concurrency(db, targets, connect):
    sid = targets()
    db.execute("UPDATE tally.kinds SET ip_limit = 10 WHERE kind = 'download'")
    conns = [connect() for _ in range(16)]
    outcomes = run_together(16, lambda i: [log(conns[i], "snippet", sid, "download", ip="203.0.113.200")
                                            for _ in range(3)])
    flat = [o for per in outcomes for o in per]
    assert flat.count("logged") == 10 and flat.count("rate_limited") == 38


def test_two_callers_creating_the_same_partitions_take_turns(db, connect):
    # Housekeeping and tally migrate both create partitions ahead; the second found the name free,
    # waited for the first's lock, then failed with 42P07 'relation already exists'.
    first, second = connect(), connect()
    first.execute("BEGIN")
    created = scalar(first, "SELECT tally.create_partitions(ahead => 30)")
    assert created > 0
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(
        scalar(second, "SELECT tally.create_partitions(ahead => 30)")))
    thread.start()
    wait_until_blocked(db, second.info.backend_pid)
    first.execute("COMMIT")
    thread.join(30)
    assert result == [0]
    assert scalar(db, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'tally.events'::regclass") > created
