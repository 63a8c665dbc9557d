"""Running pgbench (Debian's PostgreSQL 15 build) with a custom script and reading its throughput."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
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
