"""The migration runner: order, checksums, the advisory lock, re-applied definitions."""

import shutil
import threading

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from harness import MIGRATIONS_DIR, SQL_DIR
from harness.migrate import MIGRATE_LOCK_KEY, MigrationError, migrate
from tests.conftest import scalar


@pytest.fixture
def files(tmp_path):
    """Copies of migrations/ and sql/ that a test may edit."""
    shutil.copytree(MIGRATIONS_DIR, tmp_path / "migrations")
    shutil.copytree(SQL_DIR, tmp_path / "sql")
    return tmp_path


def run(dsn, files, **kwargs):
    return migrate(dsn, migrations_dir=files / "migrations", sql_dir=files / "sql", **kwargs)


def test_fresh_database_gets_every_migration_recorded_with_its_checksum(blank_dsn, files):
    plan = run(blank_dsn, files)
    assert len(plan.migrations) == len(list((files / "migrations").glob("*.sql")))
    with psycopg.connect(blank_dsn) as conn:
        rows = conn.execute("SELECT version, checksum FROM tally.schema_migrations ORDER BY 1").fetchall()
    assert [v for v, _ in rows] == [m.key for m in plan.migrations]
    assert all(len(checksum) == 64 for _, checksum in rows)


def test_second_run_applies_only_the_always_files(blank_dsn, files):
    run(blank_dsn, files)
    again = run(blank_dsn, files)
    assert again.migrations == []
    assert {d.key for d in again.definitions} == {
        "surface/ownership.sql", "events/ensure_partitions.sql", "privacy/ensure_salts.sql", "surface/grants.sql"
    }


def test_changed_applied_migration_is_refused_before_anything_runs(blank_dsn, files):
    run(blank_dsn, files)
    (files / "migrations" / "0002_settings.sql").write_text(
        (files / "migrations" / "0002_settings.sql").read_text() + "\n-- edited\n"
    )
    (files / "migrations" / "0999_new.sql").write_text("CREATE TABLE tally.should_not_exist (a int);")
    with pytest.raises(MigrationError, match=r"0002_settings\.sql changed"):
        run(blank_dsn, files)
    with psycopg.connect(blank_dsn) as conn:
        assert scalar(conn, "SELECT to_regclass('tally.should_not_exist')") is None


def test_missing_applied_migration_is_refused(blank_dsn, files):
    run(blank_dsn, files)
    (files / "migrations" / "0006_rollup.sql").unlink()
    with pytest.raises(MigrationError, match="0006 was applied but its file is missing"):
        run(blank_dsn, files)


def test_out_of_order_migration_is_refused(blank_dsn, files):
    run(blank_dsn, files)
    (files / "migrations" / "0000_early.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="out-of-order"):
        run(blank_dsn, files)


def test_failing_migration_rolls_back_and_is_not_recorded(blank_dsn, files):
    run(blank_dsn, files)
    (files / "migrations" / "0998_broken.sql").write_text(
        "CREATE TABLE tally.half_done (a int);\nSELECT 1 / 0;"
    )
    with pytest.raises(MigrationError, match="0998"):
        run(blank_dsn, files)
    with psycopg.connect(blank_dsn) as conn:
        assert scalar(conn, "SELECT to_regclass('tally.half_done')") is None
        assert scalar(conn, "SELECT count(*) FROM tally.schema_migrations WHERE version = '0998'") == 0


def test_changed_definition_is_reapplied(blank_dsn, files):
    run(blank_dsn, files)
    now_sql = files / "sql" / "util" / "now.sql"
    now_sql.write_text(now_sql.read_text().replace("Ingestion clock:", "Ingestion clock (edited):"))
    plan = run(blank_dsn, files)
    assert "util/now.sql" in {d.key for d in plan.definitions}
    with psycopg.connect(blank_dsn) as conn:
        comment = scalar(conn, "SELECT obj_description('tally.now()'::regprocedure)")
    assert comment.startswith("Ingestion clock (edited):")


def test_dry_run_lists_pending_work_and_changes_nothing(blank_dsn, files):
    plan = run(blank_dsn, files, dry_run=True)
    assert "migration 0001_roles.sql" in plan.describe()
    with psycopg.connect(blank_dsn) as conn:
        assert scalar(conn, "SELECT to_regnamespace('tally')") is None


def test_second_migrator_waits_for_the_advisory_lock(blank_dsn, files):
    holder = psycopg.connect(blank_dsn, autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK_KEY])
        with pytest.raises(psycopg.errors.LockNotAvailable):
            run(blank_dsn, files, lock_timeout_ms=200)
        done = threading.Event()
        waiter = threading.Thread(target=lambda: (run(blank_dsn, files), done.set()))
        waiter.start()
        assert not done.wait(1.0), "migrate must wait while another migrator holds the lock"
        holder.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK_KEY])
        waiter.join(60)
        assert done.is_set()
    finally:
        holder.close()
    with psycopg.connect(blank_dsn) as conn:
        assert scalar(conn, "SELECT count(*) FROM tally.schema_migrations") > 0


def test_roles_are_created_idempotently_across_databases(blank_dsn, files):
    run(blank_dsn, files)  # the template database already created the roles: no error the second time
    with psycopg.connect(blank_dsn) as conn:
        roles = {r for (r,) in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname IN ('tally_owner', 'tally_app', 'tally_admin')")}
        owner = conn.execute("SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = 'tally_owner'").fetchone()
    assert roles == {"tally_owner", "tally_app", "tally_admin"}
    assert owner == (False, False)


def test_every_definition_file_is_in_the_manifest():
    listed = set((SQL_DIR / "manifest.txt").read_text().split())
    on_disk = {str(p.relative_to(SQL_DIR)) for p in SQL_DIR.rglob("*.sql")}
    assert on_disk <= listed


def test_harness_works_against_a_server_given_by_dsn(blank_dsn, files):
    dsn = make_conninfo(blank_dsn, application_name="external")
    assert run(dsn, files).migrations


def test_migrate_works_where_the_database_defaults_to_serializable(blank_dsn, files):
    # Rebuilding the target registry refuses other isolation levels; migrate runs its files in READ COMMITTED.
    with psycopg.connect(blank_dsn, autocommit=True) as conn:
        name = scalar(conn, "SELECT current_database()")
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_isolation = serializable')
    assert run(blank_dsn, files).migrations
    with psycopg.connect(blank_dsn) as conn:
        assert scalar(conn, "SHOW transaction_isolation") == "serializable"
        assert scalar(conn, "SELECT count(*) FROM tally.target_types") > 0
