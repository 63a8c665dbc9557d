"""tally.rollup(): exactly once, atomic, skip-if-running, recorded; rebuild and live counters agree."""

import itertools
import threading
import time

import psycopg

from tests.conftest import log, scalar, wait_until_blocked


def counters(db, target_id, table="snippets"):
    return db.execute(f"SELECT views, copies, downloads, uses FROM tally.{table} WHERE id = %s",
                      [target_id]).fetchone()


def rollup(conn):
    row = conn.execute("SELECT status, events, entities, error FROM tally.rollup()").fetchone()
    assert row is not None
    return row


def hold_scores(connect):
    """Another session holding tally.trending_scores, so that a rollup blocks in its second statement, after
    its first has written the daily rows and host counters. (A held host row no longer blocks it.)"""
    blocker = connect()
    blocker.execute("BEGIN")
    blocker.execute("LOCK TABLE tally.trending_scores IN SHARE MODE")
    return blocker


def test_rollup_adds_each_kind_to_its_counter_and_the_daily_table(db, targets):
    sid = targets()
    for kind, n in (("view", 3), ("copy", 2), ("download", 1), ("template_use", 4), ("builder_export", 1)):
        for i in range(n):
            assert log(db, "snippet", sid, kind, session_id=f"s{i}") == "logged"
    assert rollup(db) == ("ok", 11, 1, None)
    assert counters(db, sid) == (3, 2, 1, 5)
    assert scalar(db, "SELECT counters_refreshed_at IS NOT NULL FROM tally.snippets WHERE id = %s", [sid])
    daily = dict(db.execute("SELECT kind, count FROM tally.daily_counts WHERE target_id = %s", [sid]).fetchall())
    assert daily == {"view": 3, "copy": 2, "download": 1, "template_use": 4, "builder_export": 1}


def test_rollup_counts_each_event_once_across_runs(db, targets):
    sid = targets()
    log(db, "snippet", sid, "copy")
    rollup(db)
    assert rollup(db) == ("ok", 0, 0, None)
    log(db, "snippet", sid, "copy")
    rollup(db)
    assert counters(db, sid) == (0, 2, 0, 0)
    assert scalar(db, "SELECT sum(count) FROM tally.daily_counts") == 2


def test_events_are_grouped_by_utc_day(db, targets, clock):
    sid = targets()
    for at in ("2026-11-20 23:59:00+00", "2026-11-21 00:01:00+00", "2026-11-21 01:00:00-05"):
        clock(db, at)
        log(db, "snippet", sid, "copy")
    rollup(db)
    rows = db.execute("SELECT day::text, count FROM tally.daily_counts ORDER BY day").fetchall()
    assert rows == [("2026-11-20", 1), ("2026-11-21", 2)]


def test_event_whose_transaction_commits_after_a_rollup_is_counted_by_the_next(db, targets, connect):
    sid = targets()
    slow, fast = connect(), connect()
    slow.execute("BEGIN")
    assert log(slow, "snippet", sid, "copy") == "logged"  # takes the lower identity value, commits late
    assert log(fast, "snippet", sid, "download") == "logged"
    # While the slow transaction is open, only its own event waits; the later one is counted now.
    assert rollup(db)[:2] == ("ok", 1)
    slow.execute("COMMIT")
    assert rollup(db)[:2] == ("ok", 1)
    assert counters(db, sid) == (0, 1, 1, 0)
    assert rollup(db)[:2] == ("ok", 0)
    assert scalar(db, "SELECT sum(count) FROM tally.daily_counts") == 2


def test_events_committed_before_a_rollup_are_counted_by_it(db, targets, connect):
    sid = targets()
    other = connect()
    with other.transaction():
        log(other, "snippet", sid, "copy")
    assert rollup(db)[:2] == ("ok", 1)


def test_events_of_a_rolled_back_transaction_are_never_counted(db, targets, connect):
    sid = targets()
    other = connect()
    other.execute("BEGIN")
    log(other, "snippet", sid, "copy")
    rollup(db)
    other.execute("ROLLBACK")
    rollup(db)
    assert counters(db, sid) == (0, 0, 0, 0)


def test_second_concurrent_rollup_skips_at_once(db, targets, connect):
    sid = targets()
    log(db, "snippet", sid, "copy")
    first, second = connect(), connect()
    first.execute("BEGIN")
    assert rollup(first)[:2] == ("ok", 1)
    started = time.monotonic()
    assert rollup(second) == ("skipped", 0, 0, None)
    assert time.monotonic() - started < 2
    first.execute("COMMIT")
    assert counters(db, sid) == (0, 1, 0, 0)
    statuses = [s for (s,) in db.execute("SELECT status FROM tally.rollup_runs ORDER BY id")]
    assert statuses == ["ok", "skipped"]


def test_terminated_rollup_applies_nothing_and_the_next_counts_everything(db, targets, connect):
    sid = targets()
    for _ in range(3):
        log(db, "snippet", sid, "copy")
    blocker, victim = hold_scores(connect), connect()
    victim_pid = victim.info.backend_pid
    outcome: list[BaseException] = []

    def run_victim():
        try:
            rollup(victim)
        except psycopg.Error as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run_victim)
    thread.start()
    wait_until_blocked(db, victim_pid)
    assert scalar(db, "SELECT pg_terminate_backend(%s)", [victim_pid])
    thread.join(10)
    blocker.execute("ROLLBACK")
    assert outcome, "the terminated rollup must have failed"
    assert counters(db, sid) == (0, 0, 0, 0)
    assert scalar(db, "SELECT count(*) FROM tally.daily_counts") == 0
    assert scalar(db, "SELECT rolled_up_below FROM tally.rollup_state") == 0
    assert rollup(db)[:2] == ("ok", 3)
    assert counters(db, sid) == (0, 3, 0, 0)


def test_statement_timeout_is_recorded_as_a_failed_run_with_no_partial_counts(db, targets, connect):
    sid = targets()
    log(db, "snippet", sid, "copy")
    blocker, runner = hold_scores(connect), connect()
    runner.execute("SET statement_timeout = '300ms'")
    status, events, _, error = rollup(runner)
    blocker.execute("ROLLBACK")
    assert (status, events) == ("failed", 0)
    assert error.startswith("57014")
    assert scalar(db, "SELECT count(*) FROM tally.daily_counts") == 0
    assert counters(db, sid) == (0, 0, 0, 0)
    assert db.execute("SELECT status FROM tally.rollup_runs").fetchall() == [("failed",)]
    assert rollup(db)[:2] == ("ok", 1)


def test_every_run_is_recorded(db, targets):
    sid = targets()
    log(db, "snippet", sid, "view", session_id="a")
    log(db, "snippet", sid, "view", session_id="b")
    rollup(db)
    row = db.execute("SELECT status, events, entities, started_at <= finished_at, from_txid < to_txid "
                     "FROM tally.rollup_runs").fetchone()
    assert row == ("ok", 2, 1, True, True)


def test_batches_are_contiguous(db, targets):
    sid = targets()
    for _ in range(3):
        log(db, "snippet", sid, "copy")
        rollup(db)
    rows = db.execute("SELECT from_txid, to_txid FROM tally.rollup_runs ORDER BY id").fetchall()
    assert all(prev[1] == cur[0] for prev, cur in itertools.pairwise(rows))


def test_rebuild_agrees_with_incremental_rollups(db, targets, clock):
    ids = [targets(t) for t in ("snippet", "template", "document") for _ in range(3)]
    types = ["snippet"] * 3 + ["template"] * 3 + ["document"] * 3
    for day in range(1, 6):
        clock(db, f"2026-11-{day:02d} 12:00:00+00")
        for i, (target_type, target_id) in enumerate(zip(types, ids, strict=True)):
            for kind in ("view", "copy", "download", "template_use", "builder_export")[: (i + day) % 5 + 1]:
                log(db, target_type, target_id, kind, session_id=f"d{day}")
        rollup(db)
    before = db.execute("SELECT id, views, copies, downloads, uses FROM tally.snippets ORDER BY id").fetchall()
    assert scalar(db, "SELECT tally.rebuild_counters()") == 0
    assert db.execute("SELECT id, views, copies, downloads, uses FROM tally.snippets ORDER BY id").fetchall() == before
    db.execute("UPDATE tally.templates SET views = views + 100 WHERE id = %s", [ids[3]])
    assert scalar(db, "SELECT tally.rebuild_counters()") == 1
    assert scalar(db, "SELECT tally.rebuild_counters()") == 0


def test_counters_live_adds_events_not_yet_rolled_up(db, targets):
    sid = targets()
    log(db, "snippet", sid, "copy")
    rollup(db)
    log(db, "snippet", sid, "copy")
    log(db, "snippet", sid, "view", session_id="s")
    row = db.execute("SELECT views, copies, pending FROM tally.counters_live WHERE target_id = %s", [sid]).fetchone()
    assert row == (1, 2, 2)
    assert counters(db, sid) == (0, 1, 0, 0)


def test_rollup_queues_cache_tags_of_changed_entities_and_wakes_listeners(db, targets, connect):
    changed = targets(slug="hello-world")
    targets(slug="untouched")
    doc = targets("document", slug="guide")
    listener = connect()
    listener.execute("LISTEN tally_revalidate")
    log(db, "snippet", changed, "copy")
    log(db, "document", doc, "download")
    rollup(db)
    payloads = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    assert payloads == ["2"]  # a wake-up naming no target: any role may LISTEN
    tags = [r[0] for r in db.execute("SELECT tag FROM tally.revalidation_outbox ORDER BY tag")]
    assert tags == ["document:guide", "snippet:hello-world"]


def test_queued_tags_are_taken_once_per_consumer_and_kept_until_acknowledged(db, targets, connect):
    for i in range(5):
        log(db, "snippet", targets(slug=f"t{i}"), "copy")
    rollup(db)
    first, second = connect(), connect()
    first.execute("BEGIN")
    taken = first.execute("SELECT id, tag FROM tally.next_tags(3)").fetchall()
    # A second consumer meanwhile gets the others, not the ones being delivered.
    second.execute("BEGIN")
    others = second.execute("SELECT id, tag FROM tally.next_tags(10)").fetchall()
    assert len(taken) == 3 and len(others) == 2 and not {t[0] for t in taken} & {o[0] for o in others}
    second.execute("ROLLBACK")  # a consumer that fails: its tags stay queued
    assert scalar(first, "SELECT tally.ack_tags(%s)", [[t[0] for t in taken]]) == 3
    first.execute("COMMIT")
    assert sorted(r[0] for r in db.execute("SELECT tag FROM tally.revalidation_outbox")) == sorted(o[1] for o in others)


def test_unacknowledged_tags_expire_after_outbox_retention(db, targets):
    log(db, "snippet", targets(slug="stale"), "copy")
    rollup(db)
    db.execute("UPDATE tally.revalidation_outbox SET queued_at = now() - interval '8 days'")
    assert scalar(db, "SELECT tally.housekeeping()")["revalidation_tags_expired"] == 1
    assert scalar(db, "SELECT count(*) FROM tally.revalidation_outbox") == 0
