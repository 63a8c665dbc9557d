"""Connection settings: ``--dsn``, else ``TALLY_DSN``, else libpq's own variables when PGHOST or
PGSERVICE is set (an existing server), else the harness's local cluster."""

from __future__ import annotations

import os

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from harness.cluster import APP_DATABASE, Cluster
from harness.errors import describe_error

__all__ = ["create_database", "describe_error", "resolve_dsn", "uses_local_cluster"]


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


def create_database(base_dsn: str, database: str) -> str:
    """Drops and recreates ``database`` on the server of ``base_dsn`` (after removing its pg_cron jobs)."""
    dsn = make_conninfo(base_dsn, dbname=database)
    maintenance = make_conninfo(base_dsn, dbname=conninfo_to_dict(base_dsn).get("dbname") or "postgres")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
    if exists:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                if conn.execute("SELECT to_regproc('tally.unschedule_jobs') IS NOT NULL").fetchone() == (True,):
                    conn.execute("SELECT tally.unschedule_jobs()")
        except psycopg.Error:
            pass  # pg_cron unavailable: no jobs to remove
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return dsn
