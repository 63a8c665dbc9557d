"""P1b (log_events batches against single-row INSERTs and against the floor of their writes, and
single-client latency) and P1g (what each guard of log_event and log_events costs, each removed in turn).
Same production shape as P1: 20,000 known user agents drawn Zipf-wise plus new ones, a new session and
almost always a new address per event (a new rate-limit counter and debounce slot each), 1,000 targets."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

from bench.pgbench import interleaved
from bench.scenarios import (
    ADDRESS,
    BARE_INSERT_SCRIPT,
    KNOWN_AGENTS,
    REFERRER,
    SPREAD_TARGET,
    UA,
    Result,
    Scale,
    at_least,
    pgbench_run,
    ratio_result,
    seed_agents,
    seed_targets,
    warm_up,
)

# The expressions of the fields a guard reads; P1g replaces one with NULL at a time.
FIELDS = {
    "@IP@": ADDRESS,
    "@UA@": "'" + UA + " ' || :u",
    "@REF@": "'" + REFERRER + "'",
}
# As P1's log_event script, with the fields as tokens.
SINGLE_SCRIPT = f"""\\set n random(1, 1000000000)
\\set u random_zipfian(1, 25000, 1.07)
SELECT tally.log_event('snippet', {SPREAD_TARGET}, 'view', NULL, 's' || :n, @IP@, @UA@, @REF@);
"""
# The batch is built server-side from one random number, so its cost is part of what is measured
# (a client would send the JSON instead). User agents: exp(random() * ln 25,000) is Zipf-like (s = 1).
BATCH_JSON = """(
    SELECT jsonb_agg(jsonb_build_object(
        'target_type', 'snippet', 'target_id', 't' || (1 + x.n % 1000), 'kind', 'view', 'session_id', 's' || x.n,
        'ip', @IP@, 'user_agent', @UA@, 'referrer', @REF@))
    FROM (SELECT :n0 + g AS n, floor(exp(random() * ln(25000)))::integer AS u FROM generate_series(1, :size) AS g) AS x
)"""
BATCH_SCRIPT = f"""\\set n0 random(1, 1000000000)
SELECT count(*) FROM tally.log_events({BATCH_JSON});
"""

# The floor of any log_events: the same batch's three writes (the event, a debounce slot and a rate-limit
# counter per element), set-based in one statement, with no guard, no key derivation beyond one md5 each
# and the trigger disabled. What a batch pays above this is its validation.
BATCH_FLOOR_SCRIPT = f"""\\set n0 random(1, 1000000000)
WITH j AS MATERIALIZED (
    SELECT e.v ->> 'target_id' AS target_id, e.v ->> 'session_id' AS session_id, (e.v ->> 'ip')::inet AS ip,
        e.v ->> 'referrer' AS referrer
    FROM jsonb_array_elements({BATCH_JSON}) AS e (v)
),
counters AS (
    INSERT INTO tally.rate_limit_state AS s (key, window_start, hits)
    SELECT md5(j.ip::text)::uuid, date_trunc('minute', now()), 1 FROM j ORDER BY 1
    ON CONFLICT (key, window_start) DO UPDATE SET hits = s.hits + 1
    RETURNING 1
),
slots AS (
    INSERT INTO tally.debounce AS d (key, last_at)
    SELECT md5(j.target_id || j.session_id)::uuid, now() FROM j ORDER BY 1
    ON CONFLICT (key) DO UPDATE SET last_at = excluded.last_at
    WHERE d.last_at < excluded.last_at - interval '30 minutes'
    RETURNING 1
),
stored AS (
    INSERT INTO tally.events (created_at, target_type, target_id, kind, visitor, ip, user_agent_id, referrer)
    SELECT now(), 'snippet', j.target_id, 'view', md5(j.session_id)::uuid, j.ip, 1, j.referrer FROM j
    RETURNING 1
)
SELECT (SELECT count(*) FROM counters), (SELECT count(*) FROM slots), (SELECT count(*) FROM stored);
"""


def _script(template: str, without: str | None = None, size: int = 100) -> str:
    script = template.replace(":size", str(size))
    for token, expression in FIELDS.items():
        if template is not SINGLE_SCRIPT:
            expression = expression.replace(":n", "x.n").replace(":u", "x.u")
        script = script.replace(token, "NULL" if token == without else expression)
    return script


def _spread(script: str) -> str:
    return script.replace(":target", SPREAD_TARGET)


def _bare(conn: psycopg.Connection[Any], dsn: str, scale: Scale, sync: bool) -> Callable[[int], float]:
    """Rows per second of the bare single-row INSERT (the trigger off), for interleaved()."""
    return pgbench_run(dsn, _spread(BARE_INSERT_SCRIPT), scale, sync, trigger_off=conn)


def _element(rng: random.Random) -> dict[str, Any]:
    n = rng.randrange(1, 1_000_000_000)
    return {"target_type": "snippet", "target_id": f"t{1 + n % 1000}", "kind": "view", "session_id": f"s{n}",
            "ip": f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250}",
            "user_agent": f"{UA} {min(int(rng.paretovariate(1.0)), 25_000)}", "referrer": REFERRER}


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def latency(dsn: str, calls: int, batches: int) -> list[Result]:
    """Single-client round trips (ms), synchronous_commit on, prepared statements."""
    rng = random.Random(7)
    single: list[float] = []
    batched: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(calls):
            e = _element(rng)
            started = time.perf_counter()
            conn.execute("SELECT tally.log_event(%s, %s, %s, NULL, %s, %s, %s, %s)",
                         [e["target_type"], e["target_id"], e["kind"], e["session_id"], e["ip"], e["user_agent"],
                          e["referrer"]], prepare=True)
            single.append(time.perf_counter() - started)
        for _ in range(batches):
            payload = json.dumps([_element(rng) for _ in range(100)])
            started = time.perf_counter()
            conn.execute("SELECT count(*) FROM tally.log_events(%s::jsonb)", [payload], prepare=True)
            batched.append(time.perf_counter() - started)
    results = []
    for name, samples in (("log_event", single), ("log_events, 100 events", batched)):
        p50, p99 = _percentiles(samples)
        results.append(Result("P1b latency", f"{name}: p50 / p99 round trip, 1 client", p50, None, "ms", None,
                              "report", None, f"p99 {p99:.2f} ms; {len(samples)} calls"))
    return results


def p1b_batches(conn: psycopg.Connection[Any], dsn: str, scale: Scale) -> list[Result]:
    seed_targets(conn, 1000)
    seed_agents(conn)
    warm_up(dsn, _script(BATCH_SCRIPT), scale)
    results = []
    targets = {(100, True): 2.5, (100, False): 1.0, (1000, True): 3.0, (1000, False): 1.3}
    for sync in (True, False):
        label = "on" if sync else "off"
        runs = {"bare": _bare(conn, dsn, scale, sync)}
        for size in (100, 1000):
            runs[f"floor {size}"] = pgbench_run(dsn, _script(BATCH_FLOOR_SCRIPT, size=size), scale, sync,
                                                trigger_off=conn, per_call=size)
            runs[f"batches {size}"] = pgbench_run(dsn, _script(BATCH_SCRIPT, size=size), scale, sync, per_call=size)
        rates = interleaved(runs, scale.seconds)
        bare = rates["bare"]
        for size in (100, 1000):
            floor = rates[f"floor {size}"]
            results.append(ratio_result(
                "P1b batches", f"floor: the three writes alone, {size} per statement, no guard, sync {label}",
                floor, bare, "events/s", "report", lambda _: True, "baseline: bare single-row INSERT"))
            events = rates[f"batches {size}"]
            bound = targets[(size, sync)]
            results.append(ratio_result(
                "P1b batches", f"log_events, {size} per call, events/s, {scale.clients} clients, sync {label}",
                events, bare, "events/s", f">= {bound}x", at_least(bound), "baseline: bare single-row INSERT"))
            results.append(ratio_result(
                "P1b batches", f"log_events / its floor, {size} per call, sync {label}", events, floor, "events/s",
                "report", lambda _: True, "what validation leaves of the writes' throughput"))
    results += latency(dsn, calls=2000 if scale.seconds >= 10 else 200, batches=300 if scale.seconds >= 10 else 30)
    return results


# Each guard removed in turn, by configuration or by leaving its input out of the call.
GUARDS: list[tuple[str, str | None, str | None]] = [
    ("no rate limits (limits NULL)", "UPDATE tally.kinds SET ip_limit = NULL, user_limit = NULL WHERE kind = 'view'",
     None),
    ("no debounce (window 0)", "UPDATE tally.kinds SET debounce = '0' WHERE kind = 'view'", None),
    ("no user agent (NULL)", None, "@UA@"),
    ("no address (NULL)", None, "@IP@"),
    ("no referrer (NULL)", None, "@REF@"),
]
# The view kind's defaults (migration 0002): every script logs views only.
RESET = "UPDATE tally.kinds SET ip_limit = 300, user_limit = 300, debounce = '30 minutes' WHERE kind = 'view'"


def _guard_run(conn: psycopg.Connection[Any], dsn: str, scale: Scale, setup: str | None, field: str | None,
               batch: bool) -> Callable[[int], float]:
    """log_event calls/s, or log_events x100 events/s, sync off, with setup applied for the run, for interleaved()."""
    script, size = (_script(BATCH_SCRIPT, field), 100) if batch else (_script(SINGLE_SCRIPT, field), 1)
    measure = pgbench_run(dsn, script, scale, False, per_call=size)

    def run(seconds: int) -> float:
        if setup:
            conn.execute(setup)
        try:
            return measure(seconds)
        finally:
            conn.execute(RESET)
    return run


def p1g_guards(conn: psycopg.Connection[Any], dsn: str, scale: Scale) -> list[Result]:
    """Each guard removed, interleaved with runs with every guard: each ratio is to its own pair's baseline
    (a single baseline at the start moved the ratios by more than most guards cost)."""
    seed_targets(conn, 1000)
    seed_agents(conn)
    warm_up(dsn, _script(SINGLE_SCRIPT), scale)
    warm_up(dsn, _script(BATCH_SCRIPT), scale)
    shipped: list[tuple[float, float]] = []
    results = []
    for name, setup, field in GUARDS:
        single = interleaved({"full": _guard_run(conn, dsn, scale, None, None, batch=False),
                              "without": _guard_run(conn, dsn, scale, setup, field, batch=False)}, scale.seconds)
        batch = interleaved({"full": _guard_run(conn, dsn, scale, None, None, batch=True),
                             "without": _guard_run(conn, dsn, scale, setup, field, batch=True)}, scale.seconds)
        shipped.append((single["full"], batch["full"]))
        results.append(ratio_result("P1g guard costs", f"log_event, {name}", single["without"], single["full"],
                                    "calls/s", "report", lambda _: True,
                                    "ratio: to every guard, runs interleaved; sync off"))
        results.append(ratio_result("P1g guard costs", f"log_events x100, {name}", batch["without"], batch["full"],
                                    "events/s", "report", lambda _: True,
                                    "ratio: to every guard, runs interleaved; sync off"))
    baselines = []
    for label, index, unit in (("log_event", 0, "calls/s"), ("log_events x100", 1, "events/s")):
        values = [pair[index] for pair in shipped]
        baselines.append(Result("P1g guard costs", f"{label}, every guard (as shipped), median",
                                statistics.median(values), None, unit, None, "report", None,
                                f"{len(values)} runs: {min(values):,.0f}-{max(values):,.0f}"))
    results = baselines + results
    bare = _bare(conn, dsn, scale, sync=False)(scale.seconds)
    results.append(Result("P1g guard costs", "bare single-row INSERT (no guard at all)", bare, None, "rows/s",
                          None, "report", None, f"{KNOWN_AGENTS:,} known user agents"))
    return results
