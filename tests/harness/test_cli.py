"""The tally command line: listen prints the cache tags a rollup notifies."""

import subprocess
import sys
import time

from tests.conftest import log


def test_tally_listen_prints_tags_sent_by_a_rollup(db, dsn, targets):
    sid = targets(slug="listened")
    listener = subprocess.Popen([sys.executable, "-m", "harness.cli", "listen", "--dsn", dsn, "--count", "1"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None
        assert "listening" in listener.stdout.readline()  # LISTEN is in place before we notify
        log(db, "snippet", sid, "copy")
        db.execute("SELECT tally.rollup()")
        out, _ = listener.communicate(timeout=20)
    finally:
        listener.kill()
    assert out.split() == ["snippet:listened"]


def test_tally_migrate_dry_run_lists_nothing_on_a_migrated_database(dsn):
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "harness.cli", "migrate", "--dry-run", "--dsn", dsn],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == "up to date"
    assert "would run on every migrate: surface/ownership.sql," in out and "definition" not in out
    assert time.monotonic() - started < 60
