"""An immediate server stop (a crash, as far as PostgreSQL knows) during ingestion and rollups loses
no acknowledged event and counts none twice. Runs on a cluster of its own, since it kills the server."""

import json
import threading

import psycopg
import pytest

from harness.migrate import migrate
from tests.conftest import scalar


@pytest.mark.slow
def test_acknowledged_events_survive_an_immediate_stop_and_count_once(spare_cluster):
    dsn = spare_cluster.dsn("tally")
    migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE tally.kinds SET ip_limit = NULL, user_limit = NULL")
        conn.execute("INSERT INTO tally.snippets (id, slug) SELECT 't' || g, 's' || g FROM generate_series(1, 5) g")

    acknowledged: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def ingest(worker: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                n = 0
                while not stop.is_set():
                    call = worker * 1_000_000 + n
                    outcome = scalar(conn, "SELECT tally.log_event('snippet', %s, 'copy', metadata => %s::jsonb)::text",
                                     [f"t{n % 5 + 1}", json.dumps({"call": call})])
                    if outcome == "logged":
                        with lock:
                            acknowledged.append(call)
                    n += 1
        except psycopg.OperationalError:
            return  # the server went away mid-call: that call was never acknowledged

    def roll() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                while not stop.is_set():
                    conn.execute("SELECT tally.rollup()")
        except psycopg.OperationalError:
            return

    threads = [threading.Thread(target=ingest, args=(w,)) for w in range(4)] + [threading.Thread(target=roll)]
    for thread in threads:
        thread.start()
    while len(acknowledged) < 1500:
        threading.Event().wait(0.05)
    spare_cluster.down("immediate")
    stop.set()
    for thread in threads:
        thread.join(30)

    spare_cluster.up()
    with psycopg.connect(dsn, autocommit=True) as conn:
        stored = {int(c) for (c,) in conn.execute("SELECT metadata ->> 'call' FROM tally.events")}
        assert set(acknowledged) <= stored, "an acknowledged event was lost"
        conn.execute("SELECT tally.rollup()")
        assert scalar(conn, "SELECT count(*) FROM tally.events") == len(stored)
        assert scalar(conn, "SELECT sum(count) FROM tally.daily_counts") == len(stored)
        assert scalar(conn, "SELECT sum(copies) FROM tally.snippets") == len(stored)
