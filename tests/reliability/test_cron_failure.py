"""A pg_cron job that fails is visible in tally.job_status, and the next run recovers after the fix."""

import time

import pytest

from tests.conftest import log, scalar


def wait_for(db, query, expected, timeout=100):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.execute(query).fetchone() == expected:
            return
        time.sleep(1)
    raise AssertionError(f"{query!r} never returned {expected!r}")


@pytest.mark.cron
def test_failed_rollup_job_shows_in_job_status_and_recovers(db, targets):
    sid = targets()
    for _ in range(2):
        log(db, "snippet", sid, "copy")
    # The fault: a constraint no rollup can satisfy, as a broken setting or schema change would be.
    db.execute("ALTER TABLE tally.daily_counts ADD CONSTRAINT broken CHECK (count < 0) NOT VALID")
    db.execute("SELECT * FROM tally.schedule_jobs(rollup => '* * * * *')")
    try:
        status = ("SELECT last_status, last_rollup_status FROM tally.job_status "
                  "WHERE jobname LIKE 'tally\\_rollup@%%'")
        wait_for(db, status, ("failed", "failed"))
        message = scalar(db, "SELECT last_message FROM tally.job_status WHERE jobname LIKE 'tally\\_rollup@%%'")
        assert "tally.rollup failed: 23514" in message
        assert scalar(db, "SELECT copies FROM tally.snippets WHERE id = %s", [sid]) == 0

        db.execute("ALTER TABLE tally.daily_counts DROP CONSTRAINT broken")
        wait_for(db, status, ("succeeded", "ok"))
        assert scalar(db, "SELECT copies FROM tally.snippets WHERE id = %s", [sid]) == 2
    finally:
        db.execute("SELECT tally.unschedule_jobs()")
