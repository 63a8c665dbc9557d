"""Running pgbench (Debian's PostgreSQL 15 build) with a custom script and reading its throughput."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

PGBENCH = Path("/usr/lib/postgresql/15/bin/pgbench")


def pgbench(dsn: str, script: str, *, clients: int, seconds: int, synchronous_commit: bool) -> float:
    """Transactions per second of ``script`` run by ``clients`` connections for ``seconds``."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script)
        path = handle.name
    params = conninfo_to_dict(dsn)
    env = dict(os.environ)
    env["PGOPTIONS"] = f"-c synchronous_commit={'on' if synchronous_commit else 'off'}"
    args = [str(PGBENCH), "-n", "-M", "prepared", "-f", path, "-c", str(clients), "-j", str(min(clients, 2)),
            "-T", str(seconds)]
    for key, flag in (("host", "-h"), ("port", "-p"), ("user", "-U")):
        if params.get(key):
            args += [flag, str(params[key])]
    args.append(str(params.get("dbname", "postgres")))
    try:
        result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    finally:
        os.unlink(path)
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{result.stderr[-2000:]}")
    out = result.stdout
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    if not match:
        raise RuntimeError(f"pgbench printed no throughput:\n{out}")
    return float(match.group(1))


def interleaved(runs: Mapping[str, Callable[[int], float]], seconds: int, rounds: int = 2) -> dict[str, float]:
    """Each run's throughput, measured in ``rounds`` parts of ``seconds / rounds`` each, the order of the runs
    reversed every other round (A B C, C B A): a drift of the machine during a scenario (autovacuum of the
    tables the earlier runs filled, a checkpoint, a neighbour) then falls on every run alike instead of on
    the last one. Run one after the other, P1's run with 20,000 user agents (always its last) measured
    0.88-0.91x of its one-agent baseline in three runs of the scenario, where pairs interleaved on the same
    machine gave 0.99-1.08x. A run is called with its part's seconds."""
    part = max(1, seconds // rounds)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(rounds):
        for name in list(runs) if round_ % 2 == 0 else reversed(list(runs)):
            rates[name].append(runs[name](part))
    # Equal parts: the mean of their rates is the run's transactions over its whole time.
    return {name: statistics.fmean(values) for name, values in rates.items()}
