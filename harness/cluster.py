"""A local PostgreSQL 15 cluster with pg_cron preloaded, in a project-local data dir.

initdb and pg_ctl refuse to run as root, so when the harness runs as root every server binary is run
as the ``postgres`` user through ``runuser`` on a directory that user owns.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from harness import ROOT

APP_DATABASE = "tally"
DEFAULT_PORT = 54329

# Settings written to the cluster's postgresql.conf. Each one is here for a reason:
SERVER_SETTINGS = {
    # pg_cron must be preloaded; pg_stat_statements is used by the benchmarks' profiling.
    "shared_preload_libraries": "'pg_cron,pg_stat_statements'",
    # pg_cron keeps its metadata in one database; jobs for other databases use schedule_in_database.
    "cron.database_name": f"'{APP_DATABASE}'",
    # Tests open one database per test and up to 16 concurrent connections in some of them.
    "max_connections": "200",
    # Local cluster: Unix socket only, no TCP port to collide with other servers on the machine.
    "listen_addresses": "''",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %d '",
}


def _run_as_postgres() -> bool:
    return os.geteuid() == 0


def bindir() -> Path:
    """Where PostgreSQL's programs are (pg_config --bindir): initdb, pg_ctl, pg_dump, psql."""
    out = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def _accessible_by_postgres(path: Path) -> bool:
    """True when the postgres user can reach ``path`` (every parent must be searchable)."""
    if not _run_as_postgres():
        return True
    probe = path
    while not probe.exists():
        probe = probe.parent
    result = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(probe)], check=False)
    return result.returncode == 0


def default_home() -> Path:
    """The project-local ``.tally/`` dir, or a /var/tmp fallback when postgres cannot reach it (or its
    path is too long for a socket)."""
    if env := os.environ.get("TALLY_HOME"):
        return Path(env)
    local = ROOT / ".tally"
    # A Unix socket path is limited to 107 bytes: "<home>/run/.s.PGSQL.NNNNN" must fit.
    if len(str(local)) <= 80 and _accessible_by_postgres(ROOT):
        return local
    digest = hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
    return Path("/var/tmp") / f"pgtally-{digest}"


@dataclass(frozen=True)
class Cluster:
    home: Path
    port: int

    @classmethod
    def default(cls) -> Cluster:
        return cls(default_home(), int(os.environ.get("TALLY_PORT", DEFAULT_PORT)))

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    def dsn(self, dbname: str = APP_DATABASE, user: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user={user}"

    # -- server binaries -------------------------------------------------------------------------
    def _server_cmd(self, tool: str, *args: str) -> list[str]:
        cmd = [str(bindir() / tool), *args]
        return ["runuser", "-u", "postgres", "--", *cmd] if _run_as_postgres() else cmd

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = self._server_cmd("pg_ctl", "-D", str(self.data_dir), *args)
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def _own(self, path: Path) -> None:
        if _run_as_postgres():
            shutil.chown(path, "postgres", "postgres")

    # -- lifecycle -------------------------------------------------------------------------------
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def running(self) -> bool:
        return self._pg_ctl("status", check=False).returncode == 0

    def init(self) -> None:
        for path in (self.home, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            self._own(path)
        result = subprocess.run(
            self._server_cmd(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
            ),
            check=False,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed in {self.data_dir}:\n{result.stderr}")
        settings = {
            **SERVER_SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            # pg_cron's jobs connect through libpq: point them at our socket, not TCP localhost.
            "cron.host": f"'{self.socket_dir}'",
        }
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# pgtally local cluster\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def start(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists() and not self.running():
            pid_file.unlink()  # stale: the postmaster it names is gone
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.socket_dir)
        if not self.log_file.exists():
            self.log_file.touch()
            self._own(self.log_file)
        result = self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log_file), check=False)
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError("pg_ctl start failed:\n" + result.stderr + "\n".join(tail))

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def ensure_app_database(self) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [APP_DATABASE]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{APP_DATABASE}"')
        with psycopg.connect(self.dsn(APP_DATABASE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")

    def cron_scheduler_running(self, timeout: float = 10.0) -> bool:
        """True once pg_cron's launcher is connected (it retries every second until the app database exists)."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher'"
                ).fetchone()
                if row and row[0]:
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.2)

    def up(self) -> None:
        """Initialise (first time), start (if stopped) and prepare the cluster. Idempotent."""
        if not self.initialized():
            self.init()
        if not self.running():
            self.start()
        self.wait_ready()
        self.ensure_app_database()
        if not self.cron_scheduler_running():
            # The launcher gives up for good if its database is dropped under it: restart the server.
            self.down()
            self.start()
            self.wait_ready()
            if not self.cron_scheduler_running():
                raise RuntimeError(f"pg_cron's scheduler did not start; see {self.log_file}")

    def down(self, mode: str = "fast") -> None:
        if self.initialized() and self.running():
            self._pg_ctl("stop", "-w", "-m", mode)

    def status(self) -> dict[str, str]:
        state = "not initialised"
        if self.initialized():
            state = "running" if self.running() else "stopped"
        return {
            "state": state,
            "data_dir": str(self.data_dir),
            "socket_dir": str(self.socket_dir),
            "port": str(self.port),
            "dsn": self.dsn(),
            "log": str(self.log_file),
        }
