"""Apply ``migrations/`` (ordered, immutable, checksummed) then the ``sql/`` definitions.

Migrations are recorded in ``tally.schema_migrations`` with a SHA-256 of their file; a file changed after
it was applied, an applied migration whose file disappeared, or a new file numbered below the newest
applied one stops the run before anything is applied. Definition files (``CREATE OR REPLACE``) are listed
in ``sql/manifest.txt`` in dependency order and re-applied when their checksum changes; files whose first
line holds ``tally:always`` (grants, ownership) run on every migrate. Definitions run as ``tally_owner``
(so it owns what they create) unless their first line holds ``tally:superuser``. A session-level advisory lock keeps
two migrators from interleaving: the second waits for the first.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from harness import MIGRATIONS_DIR, SQL_DIR
from harness.errors import describe_error

# hashtext('tally.migrate') is not stable across major versions; a literal key is.
MIGRATE_LOCK_KEY = 7_301_887_001
MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
NO_TRANSACTION = "tally:no-transaction"
ALWAYS = "tally:always"
SUPERUSER = "tally:superuser"
OWNER_ROLE = "tally_owner"

RECORD_MIGRATION = "INSERT INTO tally.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)"
RECORD_DEFINITION = (
    "INSERT INTO tally.schema_definitions (path, checksum) VALUES (%s, %s) "
    "ON CONFLICT (path) DO UPDATE SET checksum = excluded.checksum, applied_at = now()"
)

BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS tally;
CREATE TABLE IF NOT EXISTS tally.schema_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tally.schema_definitions (
    path text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tally.schema_migrations IS 'Migrations applied (migrations/NNNN_*.sql), by the harness''s runner.';
COMMENT ON COLUMN tally.schema_migrations.version IS 'The file''s number.';
COMMENT ON COLUMN tally.schema_migrations.name IS 'The file''s name.';
COMMENT ON COLUMN tally.schema_migrations.checksum IS 'sha256 of the file: an applied migration must not change.';
COMMENT ON COLUMN tally.schema_migrations.applied_at IS 'When it was applied.';
COMMENT ON TABLE tally.schema_definitions IS 'Definition files (sql/) as last applied; re-applied when changed.';
COMMENT ON COLUMN tally.schema_definitions.path IS 'Path under sql/.';
COMMENT ON COLUMN tally.schema_definitions.checksum IS 'sha256 of the file when last applied.';
COMMENT ON COLUMN tally.schema_definitions.applied_at IS 'When it was last applied.';
"""


class MigrationError(RuntimeError):
    """The database and the migration files disagree; nothing was applied."""


@dataclass(frozen=True)
class SqlFile:
    key: str  # version for migrations, relative path for definitions
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0]


@dataclass
class Plan:
    migrations: list[SqlFile] = field(default_factory=list)
    definitions: list[SqlFile] = field(default_factory=list)

    @property
    def always(self) -> list[SqlFile]:
        """Definitions marked tally:always: they run on every migrate, so they are not news."""
        return [d for d in self.definitions if ALWAYS in d.first_line]

    def describe(self) -> list[str]:
        """The migrations and the changed definitions, without the always-run files."""
        lines = [f"migration {m.path.name}" for m in self.migrations]
        lines += [f"definition {d.key}" for d in self.definitions if ALWAYS not in d.first_line]
        return lines

    def summary(self, dry_run: bool) -> list[str]:
        """What a migrate did or would do, for people: 'up to date' when only always-run files ran."""
        changes = self.describe()
        always = ", ".join(d.key for d in self.always)
        verb = "would apply" if dry_run else "applied"
        lines = [f"{verb} {len(changes)} file(s)" if changes else "up to date"]
        lines += [f"  {line}" for line in changes]
        if always:
            lines.append(f"{'would run' if dry_run else 'ran'} on every migrate: {always}")
        return lines


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[SqlFile]:
    files = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        files.append(SqlFile(match.group(1), path))
    versions = [f.key for f in files]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return files


def definition_files(directory: Path = SQL_DIR) -> list[SqlFile]:
    manifest = directory / "manifest.txt"
    entries = [line.strip() for line in manifest.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [SqlFile(entry, directory / entry) for entry in entries]


def _plan(conn: psycopg.Connection[tuple[object, ...]], migrations: list[SqlFile], definitions: list[SqlFile]) -> Plan:
    applied = {str(v): str(c) for v, c in conn.execute("SELECT version, checksum FROM tally.schema_migrations")}
    by_version = {m.key: m for m in migrations}
    for version, checksum in sorted(applied.items()):
        if version not in by_version:
            raise MigrationError(f"migration {version} was applied but its file is missing")
        if by_version[version].checksum != checksum:
            raise MigrationError(
                f"migration {by_version[version].path.name} changed after it was applied "
                "(checksum mismatch); add a new migration instead of editing an applied one"
            )
    pending = [m for m in migrations if m.key not in applied]
    newest = max(applied, default="")
    early = [m.path.name for m in pending if m.key < str(newest)]
    if early:
        raise MigrationError(f"out-of-order migrations {early}: numbered below applied {newest}")
    recorded = {str(p): str(c) for p, c in conn.execute("SELECT path, checksum FROM tally.schema_definitions")}
    changed = [d for d in definitions if ALWAYS in d.first_line or recorded.get(d.key) != d.checksum]
    return Plan(pending, changed)


def migrate(
    dsn: str,
    *,
    dry_run: bool = False,
    lock_timeout_ms: int | None = None,
    migrations_dir: Path = MIGRATIONS_DIR,
    sql_dir: Path = SQL_DIR,
) -> Plan:
    """Bring the database at ``dsn`` up to date; returns what was (or, with dry_run, would be) applied."""
    migrations = migration_files(migrations_dir)
    definitions = definition_files(sql_dir)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Definitions that rebuild the target registry refuse other isolation levels (build_host_access).
        conn.execute("SET default_transaction_isolation = 'read committed'")
        if lock_timeout_ms is not None:
            conn.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        conn.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK_KEY])
        try:
            if dry_run:
                has_table = conn.execute("SELECT to_regclass('tally.schema_migrations') IS NOT NULL").fetchone()
                if not (has_table and has_table[0]):
                    return Plan(migrations, definitions)
            else:
                conn.execute(BOOTSTRAP)
            plan = _plan(conn, migrations, definitions)
            if dry_run:
                return plan
            for migration in plan.migrations:
                params = [migration.key, migration.path.name, migration.checksum]
                _apply(conn, migration, as_owner=False, record=RECORD_MIGRATION, params=params)
            for definition in plan.definitions:
                as_owner = SUPERUSER not in definition.first_line
                params = [definition.key, definition.checksum]
                _apply(conn, definition, as_owner=as_owner, record=RECORD_DEFINITION, params=params)
            return plan
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK_KEY])


def _apply(
    conn: psycopg.Connection[tuple[object, ...]], item: SqlFile, *, as_owner: bool, record: str, params: list[str]
) -> None:
    try:
        if NO_TRANSACTION in item.first_line:
            conn.execute(item.text.encode())
            conn.execute(record.encode(), params)
            return
        with conn.transaction():
            if as_owner:
                conn.execute(f"SET LOCAL ROLE {OWNER_ROLE}")
            conn.execute(item.text.encode())
            if as_owner:
                conn.execute("RESET ROLE")
            conn.execute(record.encode(), params)
    except psycopg.Error as exc:
        raise MigrationError(f"{item.key}: {describe_error(exc)}") from exc


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.migrate --dsn ...``: the entry the Docker image's init script uses (psycopg only)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m harness.migrate", description=main.__doc__)
    parser.add_argument("--dsn", required=True, help="libpq connection string")
    parser.add_argument("--dry-run", action="store_true", help="list what would run, change nothing")
    parser.add_argument("--lock-timeout", type=int, metavar="MS", help="wait at most this long for any lock")
    args = parser.parse_args(argv)
    try:
        plan = migrate(args.dsn, dry_run=args.dry_run, lock_timeout_ms=args.lock_timeout)
    except MigrationError as exc:
        print(f"migration refused: {exc}")
        return 1
    print("\n".join(plan.summary(args.dry_run)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
