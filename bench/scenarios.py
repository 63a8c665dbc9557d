"""The benchmark scenarios P1-P7 (see bench/RESULTS.md). Every figure is measured beside its baseline
in the same run; data is generated inside PostgreSQL (generate_series), never row by row from Python."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.pgbench import pgbench

UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/131.0.0.0 Safari/537.36")
REFERRER = "https://www.google.com/search?q=postgres+snippets"


@dataclass
class Scale:
    clients: int = 8
    seconds: int = 15
    history: int = 5_000_000  # P3, P5: events already rolled up
    batch: int = 100_000  # P3: new events
    pending: int = 1_000_000  # P4
    targets: int = 10_000  # P4, P6
    entities: int = 100_000  # P5
    refresh_small: int = 1_000_000  # P6
    refresh_large: int = 10_000_000  # P6

    @classmethod
    def quick(cls) -> Scale:
        return cls(clients=4, seconds=2, history=100_000, batch=10_000, pending=50_000, targets=1_000,
                   entities=2_000, refresh_small=20_000, refresh_large=100_000)


@dataclass
class Result:
    scenario: str
    metric: str
    value: float
    baseline: float | None
    unit: str
    ratio: float | None
    target: str
    met: bool | None
    note: str = ""


def ratio_result(scenario: str, metric: str, value: float, baseline: float, unit: str, target: str,
                 ok: Callable[[float], bool], note: str = "") -> Result:
    ratio = value / baseline if baseline else float("nan")
    return Result(scenario, metric, value, baseline, unit, ratio, target, ok(ratio), note)


def at_least(bound: float) -> Callable[[float], bool]:
    return lambda ratio: ratio >= bound


def at_most(bound: float) -> Callable[[float], bool]:
    return lambda ratio: ratio <= bound


def timed(conn: psycopg.Connection[Any], query: str, params: Any = None) -> float:
    started = time.perf_counter()
    conn.execute(query.encode(), params)
    return time.perf_counter() - started


def seed_targets(conn: psycopg.Connection[Any], n: int) -> None:
    conn.execute("INSERT INTO tally.snippets (id, slug, owner_id, visibility)"
                 " SELECT 't' || g, 'slug-' || g, 'owner-' || (g %% 100), 'public'"
                 " FROM generate_series(1, %s) AS g ON CONFLICT DO NOTHING", [n])


def agent_id(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT id FROM tally.remember_user_agent(%s, current_date)", [UA]).fetchone()
    assert row is not None
    return int(row[0])


def bulk_events(conn: psycopg.Connection[Any], n: int, targets: int, days: int = 30) -> None:
    """Inserts n events straight into tally.events (trigger off): history for rollup and trending."""
    ua = agent_id(conn)
    conn.execute("ALTER TABLE tally.events DISABLE TRIGGER admit_event")
    conn.execute(
        "INSERT INTO tally.events (created_at, target_type, target_id, kind, visitor, ip, user_agent_id, referrer)"
        " SELECT now() - (random() * %s) * interval '1 day', 'snippet', 't' || (1 + (g %% %s)),"
        " (ARRAY['view', 'view', 'view', 'view', 'copy', 'download', 'template_use', 'builder_export'])"
        "[1 + (g %% 8)], md5(g::text)::uuid, ('10.' || (g %% 250) || '.' || (g / 250 %% 250) || '.1')::inet,"
        " %s, %s FROM generate_series(1, %s) AS g",
        [days - 0.01, targets, ua, REFERRER, n])
    conn.execute("ALTER TABLE tally.events ENABLE TRIGGER admit_event")
    conn.execute("ANALYZE tally.events")


LOG_EVENT_SCRIPT = f"""\\set n random(1, 1000000000)
SELECT tally.log_event('snippet', :target, 'view', NULL, 's' || :n,
    '10.' || (:n % 250) || '.' || (:n / 250 % 250) || '.' || (:n / 62500 % 250), '{UA}', '{REFERRER}');
"""
# The same row log_event stores (user agents live in tally.user_agents; :agent is the id of UA there).
BARE_INSERT_SCRIPT = f"""\\set n random(1, 1000000000)
INSERT INTO tally.events (created_at, target_type, target_id, kind, visitor, ip, user_agent_id, referrer)
VALUES (now(), 'snippet', :target, 'view', md5('s' || :n)::uuid,
    ('10.' || (:n % 250) || '.' || (:n / 250 % 250) || '.' || (:n / 62500 % 250))::inet, :agent, '{REFERRER}');
"""
NAIVE_UPDATE_SCRIPT = "UPDATE tally.snippets SET views = views + 1 WHERE id = 't1';\n"


def _scripts(conn: psycopg.Connection[Any], spread: bool) -> tuple[str, str]:
    target = "('t' || (1 + :n % 1000))" if spread else "'t1'"
    bare = BARE_INSERT_SCRIPT.replace(":target", target).replace(":agent", str(agent_id(conn)))
    return LOG_EVENT_SCRIPT.replace(":target", target), bare


def p1_ingest(conn: psycopg.Connection[Any], dsn: str, scale: Scale) -> list[Result]:
    seed_targets(conn, 1000)
    log_script, bare_script = _scripts(conn, spread=True)
    results = []
    for sync in (True, False):
        calls = pgbench(dsn, log_script, clients=scale.clients, seconds=scale.seconds, synchronous_commit=sync)
        conn.execute("ALTER TABLE tally.events DISABLE TRIGGER admit_event")
        try:
            bare = pgbench(dsn, bare_script, clients=scale.clients, seconds=scale.seconds, synchronous_commit=sync)
        finally:
            conn.execute("ALTER TABLE tally.events ENABLE TRIGGER admit_event")
        label = "on" if sync else "off"
        target = ">= 0.75x" if sync else ">= 0.6x"
        results.append(ratio_result(
            "P1 ingest", f"log_event calls/s, {scale.clients} clients, synchronous_commit={label}", calls, bare,
            "calls/s", target, at_least(0.75 if sync else 0.6), "baseline: bare INSERT, no trigger"))
        if sync:
            results.append(Result("P1 ingest", "log_event calls/s absolute (synchronous_commit=on)", calls, None,
                                  "calls/s", None, ">= 6000/s", calls >= 6000))
    return results


def p2_hot_target(conn: psycopg.Connection[Any], dsn: str, scale: Scale) -> list[Result]:
    seed_targets(conn, 1)
    log_script, _ = _scripts(conn, spread=False)
    results = []
    for sync in (True, False):
        calls = pgbench(dsn, log_script, clients=scale.clients, seconds=scale.seconds, synchronous_commit=sync)
        naive = pgbench(dsn, NAIVE_UPDATE_SCRIPT, clients=scale.clients, seconds=scale.seconds,
                        synchronous_commit=sync)
        label = "on" if sync else "off"
        target = ">= 2.5x" if sync else ">= 1x"
        results.append(ratio_result(
            "P2 hot target", f"log_event on one target, synchronous_commit={label}", calls, naive, "calls/s",
            target, at_least(2.5 if sync else 1.0), "baseline: UPDATE ... SET views = views + 1"))
    return results


def p3_incremental_rollup(conn: psycopg.Connection[Any], scale: Scale) -> list[Result]:
    seed_targets(conn, scale.targets)

    def batch_rollup() -> float:
        # New events are recent (the last day); a checkpoint first, so that no run pays for another's writes.
        bulk_events(conn, scale.batch, scale.targets, days=1)
        conn.execute("CHECKPOINT")
        return timed(conn, "SELECT tally.rollup()")

    cold = statistics.median(batch_rollup() for _ in range(3))
    bulk_events(conn, scale.history, scale.targets)
    conn.execute("SELECT tally.rollup()")
    warm = statistics.median(batch_rollup() for _ in range(3))
    return [ratio_result("P3 incremental rollup", f"rollup of {scale.batch:,} new events after {scale.history:,}",
                         warm, cold, "s", "<= 1.2x", at_most(1.2),
                         "median of 3 batches each; baseline: same batches before the history")]


def p4_rollup_throughput(conn: psycopg.Connection[Any], scale: Scale) -> list[Result]:
    seed_targets(conn, scale.targets)
    bulk_events(conn, scale.pending, scale.targets)
    empty = timed(conn, "SELECT tally.rollup()")
    bulk_events(conn, scale.pending, scale.targets)
    upsert = timed(conn, "SELECT tally.rollup()")
    return [
        Result("P4 rollup throughput", f"events/s, {scale.pending:,} events over {scale.targets:,} targets, "
               "empty daily table", scale.pending / empty, None, "events/s", None, ">= 500k/s",
               scale.pending / empty >= 500_000),
        Result("P4 rollup throughput", "events/s, same days already in the daily table", scale.pending / upsert,
               None, "events/s", None, ">= 500k/s", scale.pending / upsert >= 500_000),
    ]


LIVE_TRENDING = """
SELECT e.target_id, sum(k.weight * power(0.5, extract(epoch FROM now() - e.created_at) / 86400 / 3)) AS score
FROM tally.events AS e JOIN tally.kinds AS k ON k.kind = e.kind
WHERE e.target_type = 'snippet' AND e.created_at > now() - interval '7 days'
GROUP BY e.target_id ORDER BY score DESC LIMIT 20
"""


def p5_trending_read(conn: psycopg.Connection[Any], scale: Scale) -> list[Result]:
    seed_targets(conn, scale.entities)
    bulk_events(conn, scale.history, scale.entities)
    conn.execute("SELECT tally.rollup()")
    refresh = timed(conn, "SELECT tally.refresh_trending()")
    samples = []
    for _ in range(300):
        samples.append(timed(conn, "SELECT * FROM tally.trending('snippet', '7d', 20)"))
    live = statistics.median(timed(conn, LIVE_TRENDING) for _ in range(3))
    p50 = statistics.median(samples)
    return [
        Result("P5 trending read", "trending() p50 latency (client round trip)", p50 * 1000, None, "ms", None,
               "< 0.2 ms", p50 * 1000 < 0.2),
        ratio_result("P5 trending read", "speed-up over the same ranking computed live from events", live, p50,
                     "s", ">= 10000x", at_least(10_000), f"live query p50 {live * 1000:.0f} ms"),
        Result("P5 trending read", f"REFRESH CONCURRENTLY, {scale.entities:,} entities", refresh, None, "s", None,
               "< 3 s", refresh < 3),
    ]


def p6_refresh_scaling(conn: psycopg.Connection[Any], scale: Scale) -> list[Result]:
    seed_targets(conn, scale.targets)
    bulk_events(conn, scale.refresh_small, scale.targets)
    conn.execute("SELECT tally.rollup()")
    conn.execute("SELECT tally.refresh_trending()")
    small = statistics.median(timed(conn, "SELECT tally.refresh_trending()") for _ in range(3))
    bulk_events(conn, scale.refresh_large - scale.refresh_small, scale.targets)
    conn.execute("SELECT tally.rollup()")
    large = statistics.median(timed(conn, "SELECT tally.refresh_trending()") for _ in range(3))
    return [ratio_result("P6 trending refresh", f"refresh with {scale.refresh_large:,} vs {scale.refresh_small:,} "
                         "events", large, small, "s", "<= 1.2x", at_most(1.2))]


def p7_storage(conn: psycopg.Connection[Any], dsn: str, scale: Scale) -> list[Result]:
    seed_targets(conn, 1000)
    log_script, _ = _scripts(conn, spread=True)
    pgbench(dsn, log_script, clients=scale.clients, seconds=scale.seconds, synchronous_commit=False)
    conn.execute("VACUUM ANALYZE tally.events")
    row = conn.execute(
        "SELECT (SELECT count(*) FROM tally.events), (SELECT sum(pg_total_relation_size(i.inhrelid))"
        " FROM pg_inherits AS i WHERE i.inhparent = 'tally.events'::regclass)"
    ).fetchone()
    n, size = (int(row[0]), float(row[1])) if row else (0, 0.0)
    conn.execute("SELECT set_config('tally.clock', (now() + interval '2 hours')::text, false)")
    conn.execute("UPDATE tally.settings SET clock_override = true")
    conn.execute("SELECT tally.housekeeping()")
    side = conn.execute("SELECT (SELECT count(*) FROM tally.debounce), (SELECT count(*) FROM tally.rate_limit_state)"
                        ).fetchone() or (0, 0)
    per_event = size / n if n else float("nan")
    return [
        Result("P7 storage", "bytes per event (table + indexes, realistic UA and referrer)", per_event, None, "B",
               None, "<= 200 B", per_event <= 200, f"{n:,} events logged through log_event"),
        Result("P7 storage", "debounce + rate-limit rows left after housekeeping", float(side[0] + side[1]), None,
               "rows", None, "0 (bounded by pruning)", side[0] + side[1] == 0),
    ]
