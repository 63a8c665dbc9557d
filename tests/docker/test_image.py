"""The production image is not built here (no Docker engine): check statically what can be checked,
and run its migration entry point for real."""

import re
import subprocess
import sys

import psycopg

from harness import ROOT
from tests.conftest import scalar

DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
INIT = (ROOT / "docker" / "initdb" / "10-pgtally.sh").read_text()
COMPOSE = (ROOT / "docker" / "compose.yaml").read_text()


def test_image_is_the_official_postgres_15_bookworm_with_debian_pg_cron():
    assert re.search(r"^FROM postgres:15-bookworm$", DOCKERFILE, re.M)
    assert "postgresql-15-cron" in DOCKERFILE


def test_every_copied_path_exists_in_the_repository():
    sources = []
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY "):
            sources += line.split()[1:-1]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source


def test_server_preloads_pg_cron_for_the_init_scripts_and_the_server():
    assert "shared_preload_libraries=pg_cron" in DOCKERFILE
    assert "cron.database_name=tally" in DOCKERFILE and "POSTGRES_DB=tally" in DOCKERFILE


def test_init_script_uses_the_harness_runner_on_the_shipped_files():
    assert "python3 -m harness.migrate" in INIT
    assert "CREATE EXTENSION IF NOT EXISTS pg_cron" in INIT
    assert INIT.index("CREATE EXTENSION") < INIT.index("harness.migrate") < INIT.index("schedule_jobs")
    assert (ROOT / "docker" / "initdb" / "10-pgtally.sh").stat().st_mode & 0o111


def test_compose_has_a_volume_and_a_healthcheck():
    assert "pgdata:/var/lib/postgresql/data" in COMPOSE
    assert "healthcheck:" in COMPOSE and "pg_isready" in COMPOSE


def test_the_image_migration_entry_point_applies_every_migration_in_order(blank_dsn):
    out = subprocess.run([sys.executable, "-m", "harness.migrate", "--dsn", blank_dsn], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    applied = [line.split()[-1] for line in out.splitlines() if line.startswith("  migration ")]
    assert applied == sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    with psycopg.connect(blank_dsn) as conn:
        assert scalar(conn, "SELECT count(*) FROM tally.schema_migrations") == len(applied)
