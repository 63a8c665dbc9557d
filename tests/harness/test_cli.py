"""The tally command line: listen, migrate, status and psql, and errors in one line."""

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from harness import ROOT
from harness.demo import DemoRefused, _check_can_drop
from harness.migrate import migrate
from tests.conftest import log, scalar


def tally(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, input=stdin,
                          timeout=120)


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


@pytest.mark.parametrize(("dsn_given", "expected"), [
    ("host=/nonexistent dbname=x", 'connection to server on socket "/nonexistent/.s.PGSQL.5432" failed'),
    ("garbage", 'missing "=" after "garbage"'),
])
def test_connection_and_dsn_problems_end_in_one_line(dsn_given, expected):
    for command in (["status"], ["migrate"], ["listen"], ["psql"]):
        result = tally(*command, "--dsn", dsn_given)
        assert result.returncode == 1, command
        first, *rest = result.stderr.splitlines()
        assert first.startswith("tally: ") and expected in first and "Traceback" not in result.stderr, command
        assert rest == ["(run again with --debug for the traceback)"]
    assert "Traceback" in tally("--debug", "status", "--dsn", dsn_given).stderr


def test_sql_errors_in_a_migration_end_in_one_line_with_sqlstate(dsn, db):
    db.execute("DROP FUNCTION tally.log_event(text, text, text, text, text, text, text, text, jsonb, uuid) CASCADE")
    result = tally("migrate", "--dsn", dsn)  # the grants name a function that is gone
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.strip().splitlines() == [
        "migration refused: surface/grants.sql: 42883: function "
        "tally.log_event(text, text, text, text, text, text, text, text, jsonb, uuid) does not exist"]


def test_status_lists_pgtally_databases_with_their_dsns(dsn, db):
    name = scalar(db, "SELECT current_database()")
    result = tally("status", "--dsn", dsn)
    assert result.returncode == 0
    line = next(row for row in result.stdout.splitlines() if f" {name} " in row)
    newest = max(p.name[:4] for p in (ROOT / "migrations").glob("*.sql"))
    assert f" {newest} " in line and f"dbname={name}" in line


def test_tally_psql_opens_psql_on_the_database(dsn, db):
    result = tally("psql", "--dsn", dsn, stdin="SELECT count(*) FROM tally.kinds;\n")
    assert result.returncode == 0 and " 5\n" in result.stdout


def test_tally_listen_reconnects_after_its_connection_is_lost(db, dsn, targets):
    sid = targets(slug="after-reconnect")
    listener = subprocess.Popen([sys.executable, "-m", "harness.cli", "listen", "--dsn", dsn, "--count", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None and listener.stderr is not None
        assert "listening" in listener.stdout.readline()
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE datname = current_database() AND application_name = 'tally listen'")
        assert "connection lost" in listener.stderr.readline()
        assert "reconnected" in listener.stderr.readline()
        log(db, "snippet", sid, "copy")
        db.execute("SELECT tally.rollup()")
        out, _ = listener.communicate(timeout=20)
    finally:
        listener.kill()
    assert out.split() == ["snippet:after-reconnect"]


def test_demo_refuses_to_drop_a_database_holding_other_objects(blank_dsn):
    name = blank_dsn.split("dbname=")[1].split()[0]
    base = blank_dsn.replace(f"dbname={name}", "dbname=postgres")
    with pytest.raises(DemoRefused, match="has no pgtally schema"):
        _check_can_drop(base, name, reset=False)
    migrate(blank_dsn)
    _check_can_drop(base, name, reset=False)  # only what a demo makes, and nobody connected
    with psycopg.connect(blank_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.mine (id int)")
        with pytest.raises(DemoRefused, match=r"1 other connection.*tables outside pgtally: public\.mine"):
            _check_can_drop(base, name, reset=False)
        _check_can_drop(base, name, reset=True)


def test_a_listener_killed_mid_batch_loses_no_tag(db, dsn, targets, tmp_path):
    slugs = [f"kill-{i}" for i in range(7)]
    for slug in slugs:
        log(db, "snippet", targets(slug=slug), "copy")
    db.execute("SELECT tally.rollup()")
    out = tmp_path / "delivered"
    slow = subprocess.Popen([sys.executable, "-m", "harness.cli", "listen", "--dsn", dsn, "--batch", "3",
                             "--exec", f"cat >> {out}; sleep 30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (out.exists() and len(out.read_text().split()) == 3) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(out.read_text().split()) == 3  # the first batch was handed on, not yet acknowledged
    finally:
        os.killpg(slow.pid, signal.SIGKILL)  # mid-batch, with its command: the transaction dies with it
        slow.wait()
    while scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                     " AND state = 'idle in transaction'"):
        time.sleep(0.05)  # the server notices the closed connection and rolls the batch back
    result = tally("listen", "--dsn", dsn, "--batch", "3", "--exec", f"cat >> {out}", "--once")
    assert result.returncode == 0, result.stderr
    delivered = out.read_text().split()
    assert sorted(set(delivered)) == sorted(f"snippet:{s}" for s in slugs)
    assert len(delivered) == 10  # the killed batch was delivered again: at least once
    assert scalar(db, "SELECT count(*) FROM tally.revalidation_outbox") == 0


def test_a_failing_delivery_is_retried_and_then_acknowledged(db, dsn, targets, tmp_path):
    log(db, "snippet", targets(slug="retried"), "copy")
    db.execute("SELECT tally.rollup()")
    marker, out = tmp_path / "failed-once", tmp_path / "delivered"
    command = f"if [ -e {marker} ]; then cat >> {out}; else touch {marker}; exit 3; fi"
    result = tally("listen", "--dsn", dsn, "--exec", command, "--once")
    assert result.returncode == 0 and "delivery failed" in result.stderr and "exited with 3" in result.stderr
    assert out.read_text().split() == ["snippet:retried"]
    assert scalar(db, "SELECT count(*) FROM tally.revalidation_outbox") == 0


def test_tags_are_posted_as_json_to_an_http_endpoint(db, dsn, targets):
    import http.server
    import json
    import threading

    received: list[dict[str, list[str]]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        log(db, "snippet", targets(slug="posted"), "copy")
        db.execute("SELECT tally.rollup()")
        result = tally("listen", "--dsn", dsn, "--post", f"http://127.0.0.1:{server.server_port}/revalidate", "--once")
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert received == [{"tags": ["snippet:posted"]}]


def test_migrate_with_a_lock_timeout_stops_instead_of_queueing_behind_a_lock(dsn, db, connect):
    # A migration that queues for a lock holds up everyone who wants that table after it (ingestion,
    # for tally.events); --lock-timeout makes the run stop instead, in one line, with nothing of the file kept.
    holder = connect()
    holder.autocommit = False
    holder.execute("LOCK TABLE tally.visitor_salts IN ACCESS EXCLUSIVE MODE")  # ensure_salts.sql writes it
    started = time.monotonic()
    result = tally("migrate", "--dsn", dsn, "--lock-timeout", "200")
    assert time.monotonic() - started < 30
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.strip().splitlines() == [
        "migration refused: privacy/ensure_salts.sql: 55P03: canceling statement due to lock timeout"]
    holder.rollback()
    assert tally("migrate", "--dsn", dsn, "--lock-timeout", "200").returncode == 0
