"""A host row another transaction holds locked (an edit left open) never stalls the rollup: its share waits
in tally.host_backlog and reaches the row, once, when a later rollup finds it free."""

import time

from tests.conftest import log, scalar
from tests.rollup.test_rollup import counters, rollup


def hold(connect, target_id, strength="UPDATE"):
    """The application's open transaction holding one host row."""
    holder = connect()
    holder.execute("BEGIN")
    holder.execute(f"SELECT 1 FROM tally.snippets WHERE id = %s FOR {strength}", [target_id])
    return holder


def backlog(db):
    return db.execute("SELECT target_id, views, copies, downloads, uses FROM tally.host_backlog "
                      "ORDER BY target_id").fetchall()


def live_copies(db, target_id):
    return scalar(db, "SELECT copies FROM tally.counters_live WHERE target_type = 'snippet' AND target_id = %s",
                  [target_id])


def test_a_held_host_row_is_deferred_not_waited_for_and_counted_once_when_free(db, targets, connect):
    held, free = targets(slug="held"), targets(slug="free")
    for target in (held, held, free):
        log(db, "snippet", target, "copy")
    holder, roller = hold(connect, held), connect()
    roller.execute("SET statement_timeout = '20s'")  # before the backlog, the rollup waited for the holder

    started = time.monotonic()
    assert rollup(roller)[:3] == ("ok", 3, 1)  # one tag: the row it could update
    assert time.monotonic() - started < 10
    assert counters(db, free) == (0, 1, 0, 0)
    assert counters(db, held) == (0, 0, 0, 0)
    assert backlog(db) == [(held, 0, 2, 0, 0)]
    assert live_copies(db, held) == 2  # counters_live adds the backlog
    assert scalar(db, "SELECT sum(count) FROM tally.daily_counts WHERE target_id = %s", [held]) == 2
    assert db.execute("SELECT deferred_targets, deferred_reason FROM tally.job_status").fetchone() == (
        1, "row locked by another transaction")

    log(db, "snippet", held, "copy")  # still held: the new share joins the backlog
    assert rollup(roller)[:3] == ("ok", 1, 0)
    assert backlog(db) == [(held, 0, 3, 0, 0)]
    assert live_copies(db, held) == 3

    holder.execute("COMMIT")
    assert rollup(roller)[:3] == ("ok", 0, 1)  # the backlog reaches the row, and its tag is queued
    assert counters(db, held) == (0, 3, 0, 0)
    assert backlog(db) == []
    assert scalar(db, "SELECT deferred_targets FROM tally.job_status") == 0
    assert scalar(db, "SELECT count(*) FROM tally.revalidation_outbox WHERE tag = 'snippet:held'") == 1
    assert rollup(roller)[:3] == ("ok", 0, 0)
    assert counters(db, held) == (0, 3, 0, 0)
    assert live_copies(db, held) == 3


def test_a_row_only_key_share_locked_by_a_foreign_key_check_is_updated_at_once(db, targets, connect):
    # An uncommitted insert of a row that references the target takes FOR KEY SHARE: that does not
    # conflict with a counter update, so nothing is deferred.
    target = targets()
    log(db, "snippet", target, "copy")
    holder = hold(connect, target, "KEY SHARE")
    assert rollup(db)[:3] == ("ok", 1, 1)
    holder.execute("ROLLBACK")
    assert counters(db, target) == (0, 1, 0, 0)
    assert backlog(db) == []


def test_rebuild_counters_takes_the_backlog_into_its_totals(db, targets, connect):
    target = targets()
    log(db, "snippet", target, "copy")
    holder = hold(connect, target)
    rollup(db)
    assert backlog(db) == [(target, 0, 1, 0, 0)]
    holder.execute("COMMIT")
    assert scalar(db, "SELECT tally.rebuild_counters()") == 1
    assert backlog(db) == []
    assert rollup(db)[:2] == ("ok", 0)
    assert counters(db, target) == (0, 1, 0, 0)  # not added twice


def test_the_share_of_a_host_row_deleted_meanwhile_is_dropped_not_deferred(db, targets):
    target = targets()
    log(db, "snippet", target, "copy")
    db.execute("DELETE FROM tally.snippets WHERE id = %s", [target])
    assert rollup(db)[:3] == ("ok", 1, 0)
    assert backlog(db) == []


def test_rebuild_counters_queues_the_tag_of_every_row_it_changes_the_backlog_included(db, targets, connect):
    # rebuild_counters() empties the backlog into the rows' totals: a deferred row's cache must hear of it
    # as it would have from the rollup that added the share. So must a row the rebuild corrects.
    held, drifted, right = targets(slug="held"), targets(slug="drifted"), targets(slug="right")
    for target in (held, drifted, right):
        log(db, "snippet", target, "copy")
    holder = hold(connect, held)
    rollup(db)
    holder.execute("COMMIT")
    assert backlog(db) == [(held, 0, 1, 0, 0)]
    db.execute("UPDATE tally.snippets SET copies = 7 WHERE id = %s", [drifted])
    db.execute("DELETE FROM tally.revalidation_outbox")
    assert scalar(db, "SELECT tally.rebuild_counters()") == 2
    assert counters(db, held) == counters(db, drifted) == counters(db, right) == (0, 1, 0, 0)
    assert sorted(t for (t,) in db.execute("SELECT tag FROM tally.revalidation_outbox")) == [
        "snippet:drifted", "snippet:held"]
