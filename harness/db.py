"""Connection settings: ``--dsn``, else ``TALLY_DSN``, else libpq's own variables when PGHOST or
PGSERVICE is set (an existing server), else the harness's local cluster."""

from __future__ import annotations

import os

from psycopg.conninfo import make_conninfo

from harness.cluster import APP_DATABASE, Cluster


def uses_local_cluster(dsn: str | None) -> bool:
    return not (dsn or os.environ.get("TALLY_DSN") or os.environ.get("PGHOST") or os.environ.get("PGSERVICE"))


def resolve_dsn(dsn: str | None = None, dbname: str | None = None) -> str:
    if dsn:
        base = dsn
    elif env := os.environ.get("TALLY_DSN"):
        base = env
    elif os.environ.get("PGHOST") or os.environ.get("PGSERVICE"):
        base = ""  # libpq reads PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSERVICE...
    else:
        return Cluster.default().dsn(dbname or APP_DATABASE)
    return make_conninfo(base, dbname=dbname) if dbname else base
