"""Fixtures: every test gets a fresh database cloned from a migrated template on the harness cluster.

pytest-postgresql's postgresql_proc would run pg_ctl as the current user, which fails as root, so the
harness starts the cluster and the tests use postgresql_noproc against it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from pytest_postgresql import factories

from harness.cluster import Cluster
from harness.migrate import migrate

CLUSTER = Cluster.default()
CLUSTER.up()


def _drop_leftovers() -> None:
    """A run that was killed leaves its template behind, and pytest-postgresql will not create it again."""
    with psycopg.connect(CLUSTER.dsn("postgres"), autocommit=True) as admin:
        for (name,) in admin.execute(
                "SELECT datname FROM pg_database WHERE datname IN ('tally_test', 'tally_test_tmpl')").fetchall():
            admin.execute(f'ALTER DATABASE "{name}" IS_TEMPLATE false')
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


_drop_leftovers()

APP_LOGIN = "tally_test_app"
ADMIN_LOGIN = "tally_test_admin"
HOST_OWNER_LOGIN = "tally_test_host_owner"  # owns a host table; plays the attacker in trust tests


def _migrate_template(host: str, port: int, user: str, dbname: str, **_: object) -> None:
    migrate(make_conninfo(host=host, port=port, user=user, dbname=dbname))
    with psycopg.connect(make_conninfo(host=host, port=port, user=user, dbname=dbname), autocommit=True) as c:
        # Login roles for privilege tests; cluster-wide, so create once and tolerate reruns.
        for login, group in ((APP_LOGIN, "tally_app"), (ADMIN_LOGIN, "tally_admin"), (HOST_OWNER_LOGIN, None)):
            exists = c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [login]).fetchone()
            if not exists:
                c.execute(f"CREATE ROLE {login} LOGIN" + (f" IN ROLE {group}" if group else ""))


postgresql_noproc = factories.postgresql_noproc(
    host=str(CLUSTER.socket_dir), port=CLUSTER.port, user="postgres", dbname="tally_test",
    load=[_migrate_template],
)
postgresql = factories.postgresql("postgresql_noproc")


@pytest.fixture
def blank_dsn() -> Iterator[str]:
    """A brand-new empty database on the harness cluster (not the migrated template), dropped afterwards."""
    name = f"tally_blank_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(CLUSTER.dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield CLUSTER.dsn(name)
    with psycopg.connect(CLUSTER.dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def spare_cluster() -> Iterator[Cluster]:
    """A running cluster of its own, for tests that kill a server or move a database to another one. Under
    /var/tmp: pytest's tmp_path is private to root, and the server runs as postgres."""
    home = Path(tempfile.mkdtemp(prefix="pgtally-spare-", dir="/var/tmp"))
    os.chmod(home, 0o755)
    cluster = Cluster(home, free_port())
    cluster.up()
    yield cluster
    cluster.down("immediate")
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def dsn(postgresql: psycopg.Connection[Any]) -> str:
    """Connection string of this test's own database."""
    info = postgresql.info
    return make_conninfo(host=info.host, port=info.port, user=info.user, dbname=info.dbname)


@pytest.fixture
def db(postgresql: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Autocommit superuser connection to this test's database."""
    postgresql.autocommit = True
    return postgresql


@pytest.fixture
def connect(dsn: str) -> Iterator[Callable[..., psycopg.Connection[Any]]]:
    """Opens extra autocommit connections (closed at teardown), optionally as another user."""
    opened: list[psycopg.Connection[Any]] = []

    def _connect(user: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        conn = psycopg.connect(make_conninfo(dsn, user=user), autocommit=True, **kwargs)
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        with contextlib.suppress(Exception):
            conn.close()


@pytest.fixture
def targets(db: psycopg.Connection[Any]) -> Callable[..., str]:
    """Inserts a host row and returns its id: targets('snippet', visibility='private', owner_id='u1')."""
    tables = {"snippet": "snippets", "template": "templates", "document": "documents"}

    def _make(target_type: str = "snippet", *, visibility: str = "public", owner_id: str | None = "owner",
              target_id: str | None = None, slug: str | None = None) -> str:
        target_id = target_id or uuid.uuid4().hex
        db.execute(
            f"INSERT INTO tally.{tables[target_type]} (id, slug, owner_id, visibility) VALUES (%s, %s, %s, %s)",
            [target_id, slug or f"slug-{target_id}", owner_id, visibility],
        )
        return target_id

    return _make


@pytest.fixture
def clock(db: psycopg.Connection[Any]) -> Callable[[psycopg.Connection[Any], str], None]:
    """Enables the documented clock override and returns a setter: clock(conn, '2026-01-01 10:00Z')."""
    db.execute("UPDATE tally.settings SET clock_override = true")

    def _set(conn: psycopg.Connection[Any], at: str) -> None:
        conn.execute("SELECT set_config('tally.clock', %s, false)", [at])

    return _set


def log(conn: psycopg.Connection[Any], target_type: str = "snippet", target_id: str = "x",
        kind: str = "view", **kwargs: Any) -> str:
    """Calls tally.log_event with named arguments and returns the outcome."""
    names = ["target_type", "target_id", "kind", *kwargs]
    args = ", ".join(f"{name} => %s" for name in names)
    casts = {"metadata": "::jsonb", "event_id": "::uuid"}
    for name, cast in casts.items():
        args = args.replace(f"{name} => %s", f"{name} => %s{cast}")
    row = conn.execute(f"SELECT tally.log_event({args})::text",
                       [target_type, target_id, kind, *kwargs.values()]).fetchone()
    assert row is not None
    return str(row[0])


def limit(conn: psycopg.Connection[Any], kind: str, ip_limit: int | None = None,
          user_limit: int | None = None) -> None:
    """Sets a kind's per-IP and per-user rate limits (None: no limit)."""
    conn.execute("UPDATE tally.kinds SET ip_limit = %s, user_limit = %s WHERE kind = %s", [ip_limit, user_limit, kind])


def run_together(n: int, action: Callable[[int], Any]) -> list[Any]:
    """Runs action(i) in n threads released by one barrier; returns results in order, re-raising errors."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def _worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = action(i)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=_worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def crossed(connect: Callable[..., psycopg.Connection[Any]], opening: Callable[[psycopg.Connection[Any], int], Any],
            crossing: Callable[[psycopg.Connection[Any], int], str]) -> dict[int, str]:
    """A lock cycle between two open transactions: each runs opening(conn, i), then both run crossing(conn, i)
    at once, each waiting for a row the other holds, until the deadlock detector fails one wait. The victim
    (its crossing returned first) commits, then the other. Returns the crossing results by transaction."""
    conns = [connect(), connect()]
    for i, conn in enumerate(conns):
        conn.autocommit = False
        conn.execute("SET deadlock_timeout = '100ms'")
        opening(conn, i)
    results: dict[int, str] = {}

    def _cross(i: int) -> None:
        results[i] = crossing(conns[i], i)

    threads = [threading.Thread(target=_cross, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while not results and time.monotonic() < deadline:  # the victim returns; the other still waits
        time.sleep(0.01)
    (victim,) = results
    conns[victim].commit()
    threads[1 - victim].join(timeout=20)
    conns[1 - victim].commit()
    return results


def scalar(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def wait_until_blocked(db: psycopg.Connection[Any], pid: int, timeout: float = 10.0) -> None:
    """Returns once the backend pid waits on a lock; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scalar(db, "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [pid]):
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited on a lock")


def nested_plans(db: psycopg.Connection[Any], call: Callable[[], Any]) -> str:
    """The plans of every statement `call` runs, nested ones included (auto_explain, sent to this session)."""
    messages: list[str] = []
    db.add_notice_handler(lambda diag: messages.append(diag.message_primary or ""))
    db.execute("LOAD 'auto_explain'")
    db.execute("SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;"
               "SET client_min_messages = log")
    call()
    db.execute("SET client_min_messages = notice")
    return "\n".join(messages)
