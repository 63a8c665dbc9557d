"""Every caller and every job at once: single calls and batches (some in transactions that roll back),
rollups, housekeeping, erasures, rebuilds, changed limits and listings, a new target type, a cache-tag
consumer, reads, and an application holding host rows.
Afterwards the counters, daily counts and trending scores equal what the committed calls logged, and
every target counted had its cache tag queued."""

import collections
import datetime
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.conftest import scalar
from tests.trending.test_forward_decay import assert_matches_recompute

KINDS = ("view", "copy", "download", "template_use", "builder_export")
COLUMNS = {"view": "views", "copy": "copies", "download": "downloads", "template_use": "uses",
           "builder_export": "uses"}
SECONDS = 12
# Transactions of several calls wait on each other in cycles (by design here): break them quickly.
FAST_DETECTOR = "-c deadlock_timeout=50ms"


RECIPES = """
CREATE TABLE public.recipes (
    id bigint PRIMARY KEY, handle text NOT NULL, views bigint NOT NULL DEFAULT 0, copies bigint NOT NULL DEFAULT 0,
    downloads bigint NOT NULL DEFAULT 0, uses bigint NOT NULL DEFAULT 0, counters_refreshed_at timestamptz
);
INSERT INTO public.recipes (id, handle) SELECT g, 'recipe-' || g FROM generate_series(1, 10) AS g;
GRANT SELECT, UPDATE ON public.recipes TO tally_host_access;
SELECT tally.register_target_type('recipe', 'public.recipes', key_column => 'id', slug_column => 'handle');
"""


def element(rng: random.Random, ids: list[str], recipes: bool) -> dict[str, Any]:
    """A snippet event, or once recipes are registered, sometimes a recipe's, its bigint id spelled
    with leading zeros or spaces as callers may ('007', ' 7'): it counts for recipe 7 all the same."""
    target = ("snippet", rng.choice(ids))
    if recipes and rng.random() < 0.3:
        target = ("recipe", rng.choice(["", "0", "00", " "]) + str(rng.randrange(1, 11)))
    return {"target_type": target[0], "target_id": target[1], "kind": rng.choice(KINDS),
            "user_id": rng.choice([None, None, *[f"u{i}" for i in range(6)]]),
            "session_id": f"s{rng.randrange(60)}", "ip": f"10.0.{rng.randrange(4)}.{rng.randrange(50)}",
            "user_agent": rng.choice([f"agent {rng.randrange(30)}"] * 19 + ["Googlebot/2.1"]),
            # Retries: an event_id another connection may be sending at the same instant.
            "event_id": str(uuid.UUID(int=rng.randrange(300))) if rng.random() < 0.2 else None}


# Elements log_event would refuse with an error: in a batch, each gets its error row and changes nothing.
HOSTILE = [{"target_type": "snippet", "target_id": "x", "kind": "VIEW"}, {"target_type": "snippet", "kind": "view"},
           {"target_type": "snippet", "target_id": "x" * 10_000, "kind": "view"}, [1, 2], "view"]


def canonical(e: dict[str, Any]) -> tuple[str, str, str]:
    return e["target_type"], str(int(e["target_id"])) if e["target_type"] == "recipe" else e["target_id"], e["kind"]


@pytest.mark.parametrize("month_end", [False, True], ids=["now", "across midnight at the end of this month"])
def test_counters_equal_the_committed_events_when_every_caller_and_job_runs_at_once(db, targets, connect, month_end):
    db.execute("UPDATE tally.kinds SET ip_limit = 40, user_limit = 60")
    # Either the real clock, or one that starts 8 s before this month's last midnight and runs 5x:
    # salts, debounce windows, daily rows, the trending windows' daily step and the month's partition
    # all turn over while everything runs.
    start = scalar(db, "SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month' - interval '8 s'")
    started = time.monotonic()
    if month_end:
        db.execute("UPDATE tally.settings SET clock_override = true")

    def tick(conn: psycopg.Connection[Any]) -> None:
        if month_end:
            at = start + datetime.timedelta(seconds=5 * (time.monotonic() - started))
            conn.execute("SELECT set_config('tally.clock', %s, false)", [f"{at.isoformat()}+00"])

    ids = [targets() for _ in range(25)]
    stop = threading.Event()
    logged: collections.Counter[tuple[str, str, str]] = collections.Counter()
    registered = threading.Event()
    counted = threading.Lock()
    calls = collections.Counter()
    failures: list[BaseException] = []

    def keep(outcomes: list[tuple[dict[str, Any], str]]) -> None:
        with counted:
            for e, outcome in outcomes:
                calls[outcome] += 1
                if outcome == "logged":
                    logged[canonical(e)] += 1

    def in_transaction(conn: psycopg.Connection[Any], rng: random.Random, events: list[dict[str, Any]],
                       send: Callable[[psycopg.Connection[Any], list[dict[str, Any]]], list[str]]) -> None:
        """Sends the events in one transaction, which commits (70%) or rolls back; keeps what committed."""
        commit = rng.random() < 0.7
        tick(conn)
        with conn.transaction() as tx:  # a lock cycle ends in fail-closed outcomes, never in 40P01
            outcomes = send(conn, events)
            if not commit:
                raise psycopg.Rollback(tx)
        if commit:
            keep(list(zip(events, outcomes, strict=True)))

    def one_by_one(conn: psycopg.Connection[Any], events: list[dict[str, Any]]) -> list[str]:
        return [scalar(conn, "SELECT tally.log_event(target_type => %(target_type)s, target_id => %(target_id)s,"
                             " kind => %(kind)s, user_id => %(user_id)s, session_id => %(session_id)s,"
                             " ip => %(ip)s, user_agent => %(user_agent)s, event_id => %(event_id)s::uuid)::text", e)
                for e in events]

    def as_batch(conn: psycopg.Connection[Any], events: list[dict[str, Any]]) -> list[str]:
        return [outcome for _, outcome in conn.execute(
            "SELECT ord, outcome::text FROM tally.log_events(%s::jsonb) ORDER BY ord", [json.dumps(events)])]

    def single(i: int) -> None:
        conn, rng = connect(options=FAST_DETECTOR), random.Random(i)
        while not stop.is_set():
            events = [element(rng, ids, registered.is_set()) for _ in range(rng.choice([1, 1, 3]))]
            in_transaction(conn, rng, events, one_by_one)

    def batches(i: int) -> None:
        conn, rng = connect(options=FAST_DETECTOR), random.Random(100 + i)
        while not stop.is_set():
            events = [element(rng, ids, registered.is_set()) for _ in range(rng.randrange(1, 40))]
            events += rng.sample(HOSTILE, rng.choice([0, 0, 1, 2]))
            rng.shuffle(events)
            in_transaction(conn, rng, events, as_batch)

    def every(pause: float, work: Any) -> Any:
        def loop(i: int) -> None:
            conn, rng = connect(options=FAST_DETECTOR), random.Random(200 + i)
            while not stop.is_set():
                tick(conn)
                work(conn, rng)
                time.sleep(pause)
        return loop

    def hold_host_row(conn: psycopg.Connection[Any], rng: random.Random) -> None:
        with conn.transaction():
            conn.execute("UPDATE tally.snippets SET slug = slug WHERE id = %s", [rng.choice(ids)])
            time.sleep(rng.random() / 5)

    delivered: set[str] = set()

    def deliver(conn: psycopg.Connection[Any], rng: random.Random) -> None:
        """A cache-tag consumer: takes a few queued tags, then acknowledges them, or fails (rolls back)."""
        with conn.transaction() as tx:
            taken = conn.execute("SELECT id, tag FROM tally.next_tags(%s)", [rng.randrange(1, 30)]).fetchall()
            if rng.random() < 0.2:
                raise psycopg.Rollback(tx)  # the delivery failed: the tags stay queued
            conn.execute("SELECT tally.ack_tags(%s)", [[i for i, _ in taken]])
        delivered.update(tag for _, tag in taken)

    def hide(conn: psycopg.Connection[Any], rng: random.Random) -> None:  # listing changes under the calls
        conn.execute("UPDATE tally.snippets SET visibility = %s WHERE id = %s",
                     [rng.choice(["public", "unlisted", "private"]), rng.choice(ids)])

    def read(conn: psycopg.Connection[Any], rng: random.Random) -> None:
        conn.execute("SELECT * FROM tally.trending('snippet', '7d', 10)").fetchall()
        conn.execute("SELECT * FROM tally.live_counters('snippet', %s)", [rng.sample(ids, 5)]).fetchall()
        conn.execute("SELECT * FROM tally.job_status").fetchall()

    def register(i: int) -> None:  # a type registered while all the rest runs
        conn = connect(options=FAST_DETECTOR)
        time.sleep(SECONDS / 4)
        conn.execute(RECIPES)
        registered.set()

    workers = [single, single, single, batches, batches, register,
               every(0.05, lambda c, r: c.execute("SELECT tally.rollup()")),
               every(0.3, lambda c, r: c.execute("SELECT tally.housekeeping()")),
               every(0.3, lambda c, r: c.execute("SELECT tally.forget_user(%s)", [f"u{r.randrange(6)}"])),
               every(1.0, lambda c, r: c.execute("SELECT tally.rebuild_trending()")),
               every(1.5, lambda c, r: c.execute("SELECT tally.rebuild_counters()")),
               every(0.5, lambda c, r: c.execute("UPDATE tally.kinds SET ip_limit = %s", [r.choice([20, 40, 80])])),
               every(0.05, hold_host_row), every(0.02, read), every(0.05, deliver), every(0.2, hide)]

    def run(i: int) -> None:
        try:
            workers[i](i)
        except BaseException as exc:  # re-raised by the test below
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    stop.wait(SECONDS)
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures, failures

    tick(db)
    db.execute("UPDATE tally.snippets SET visibility = 'public'")  # listed again: trending shows every score
    for _ in range(3):  # nothing holds a host row now: the backlog, if any, is added by the next rollup
        assert scalar(db, "SELECT status FROM tally.rollup()") == "ok"
    assert calls["logged"] > 500 and calls[None] > 0, calls  # None: an element refused with an error
    assert all(calls[outcome] > 0 for outcome in ("debounced", "rate_limited", "duplicate", "discarded_bot")), calls
    assert scalar(db, "SELECT count(*) FROM tally.host_backlog") == 0
    assert logged.keys() & {("recipe", str(i), k) for i in range(1, 11) for k in KINDS}
    events = dict(((y, t, k), n) for y, t, k, n in db.execute(
        "SELECT target_type, target_id, kind, count(*) FROM tally.events GROUP BY 1, 2, 3"))
    daily = dict(((y, t, k), n) for y, t, k, n in db.execute(
        "SELECT target_type, target_id, kind, sum(count) FROM tally.daily_counts GROUP BY 1, 2, 3"))
    assert events == daily == dict(logged)
    for target_type, table, keys in (("snippet", "tally.snippets", ids), ("recipe", "public.recipes", None)):
        expected = collections.defaultdict(lambda: {"views": 0, "copies": 0, "downloads": 0, "uses": 0})
        for (y, target, kind), n in logged.items():
            if y == target_type:
                expected[target][COLUMNS[kind]] += n
        host = {str(t): {"views": v, "copies": c, "downloads": d, "uses": u} for t, v, c, d, u in db.execute(
            f"SELECT id, views, copies, downloads, uses FROM {table}")}
        live = {t: {"views": v, "copies": c, "downloads": d, "uses": u} for t, v, c, d, u in db.execute(
            "SELECT target_id, views, copies, downloads, uses FROM tally.live_counters(%s, %s)",
            [target_type, keys or [str(i) for i in range(1, 11)]])}
        assert host == live == {t: expected[t] for t in host}, target_type
        assert set(expected) <= set(host)
        # Every target whose counters moved had its cache tag queued: still queued, or delivered.
        slugs = dict(db.execute(f"SELECT id::text, {'slug' if target_type == 'snippet' else 'handle'} FROM {table}"))
        queued = {tag for (tag,) in db.execute("SELECT tag FROM tally.revalidation_outbox")}
        untagged = {t for t in expected if f"{target_type}:{slugs[t]}" not in queued | delivered}
        assert not untagged, (target_type, untagged)
    assert_matches_recompute(db, scalar(db, "SELECT (tally.now() AT TIME ZONE 'UTC')::date"))
