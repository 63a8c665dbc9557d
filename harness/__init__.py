"""pgtally harness: local cluster, migrations, demo, benchmarks. All counting logic lives in SQL."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"
MIGRATIONS_DIR = ROOT / "migrations"
