"""`tally bench`: each scenario on a fresh migrated database, one table of results, JSON and a chart."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from bench import batches, scenarios
from bench.scenarios import Result, Scale
from harness import ROOT
from harness.db import create_database
from harness.migrate import migrate

RESULTS_DIR = ROOT / "bench" / "results"

Scenario = Callable[[psycopg.Connection[Any], str, Scale], list[Result]]
SCENARIOS: dict[str, Scenario] = {
    "P1": scenarios.p1_ingest,
    "P1b": batches.p1b_batches,
    "P1g": batches.p1g_guards,
    "P2": scenarios.p2_hot_target,
    "P3": lambda conn, dsn, scale: scenarios.p3_incremental_rollup(conn, scale),
    "P4": lambda conn, dsn, scale: scenarios.p4_rollup_throughput(conn, scale),
    "P5": lambda conn, dsn, scale: scenarios.p5_trending(conn, scale),
    "P6": lambda conn, dsn, scale: scenarios.p6_upkeep_scaling(conn, scale),
    "P7": scenarios.p7_storage,
    "P8": scenarios.p8_privacy,
}


def machine_info(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    settings = dict(conn.execute(
        "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'shared_buffers',"
        " 'work_mem', 'max_wal_size', 'fsync', 'wal_level', 'checkpoint_timeout')").fetchall())
    version = conn.execute("SHOW server_version").fetchone()
    return {"cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "postgresql": version[0] if version else None, "settings": settings}


def run(dsn: str, scale: Scale, only: list[str], console: Console, quick: bool) -> list[Result]:
    results: list[Result] = []
    started = time.monotonic()
    info: dict[str, Any] = {}
    for name, scenario in SCENARIOS.items():
        if only and name.upper() not in {o.upper() for o in only}:
            continue
        scenario_dsn = create_database(dsn, f"tally_bench_{name.lower()}")
        migrate(scenario_dsn)
        with psycopg.connect(scenario_dsn, autocommit=True) as conn:
            info = info or machine_info(conn)
            with console.status(f"{name}: running"):
                t0 = time.monotonic()
                found = scenario(conn, scenario_dsn, scale)
            console.print(f"{name} done in {time.monotonic() - t0:.1f} s")
            results += found
        create_database(dsn, f"tally_bench_{name.lower()}")  # leave an empty database, not gigabytes
    print_table(results, console)
    write_outputs(results, info, scale, quick, time.monotonic() - started)
    return results


def print_table(results: list[Result], console: Console) -> None:
    table = Table(title="pgtally benchmarks (each figure beside its baseline from the same run)")
    for column in ("scenario", "metric", "value", "baseline", "ratio", "target", "met"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.scenario, r.metric, f"{r.value:,.3f} {r.unit}" if r.value < 100 else f"{r.value:,.0f} {r.unit}",
            "" if r.baseline is None else (f"{r.baseline:,.4f}" if r.baseline < 100 else f"{r.baseline:,.0f}"),
            "" if r.ratio is None else f"{r.ratio:,.2f}x", r.target,
            "yes" if r.met else "no" if r.met is not None else "",
        )
    console.print(table)


def write_outputs(results: list[Result], info: dict[str, Any], scale: Scale, quick: bool, elapsed: float) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"quick": quick, "elapsed_s": round(elapsed, 1), "scale": asdict(scale), "machine": info,
               "results": [asdict(r) for r in results]}
    (RESULTS_DIR / "latest.json").write_text(json.dumps(payload, indent=2, default=str))
    chart(results, RESULTS_DIR / "ratios.png")


def chart(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.ratio is not None]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.5))
    labels = [f"{r.scenario}: {r.metric}"[:80] for r in rows]
    ax.barh(labels[::-1], [r.ratio or 0 for r in rows][::-1],
            color=["tab:green" if r.met else "tab:red" for r in rows][::-1])
    ax.set_xscale("log")
    ax.set_xlabel("ratio to baseline (log scale)")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
