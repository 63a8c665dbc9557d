"""The local cluster: idempotent up, stale pid files, pg_cron preloaded."""

import os
import shutil
import tempfile
from pathlib import Path

import psycopg

from harness.cluster import Cluster
from tests.conftest import CLUSTER, free_port, scalar


def test_up_twice_is_harmless():
    CLUSTER.up()
    CLUSTER.up()
    assert CLUSTER.status()["state"] == "running"


def test_cluster_preloads_pg_cron_for_the_app_database():
    with psycopg.connect(CLUSTER.dsn()) as conn:
        assert "pg_cron" in scalar(conn, "SHOW shared_preload_libraries")
        assert scalar(conn, "SHOW cron.database_name") == "tally"
        assert scalar(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'") == 1


def test_stale_pid_file_is_handled():
    # Under /var/tmp: pytest's tmp_path is private to root, and the server runs as postgres.
    home = Path(tempfile.mkdtemp(prefix="pgtally-test-", dir="/var/tmp"))
    os.chmod(home, 0o755)
    cluster = Cluster(home, free_port())
    try:
        cluster.up()
        cluster.down()
        # A crash leaves postmaster.pid behind, naming a process that no longer exists.
        pid_file = cluster.data_dir / "postmaster.pid"
        pid_file.write_text("999999\n" + str(cluster.data_dir) + "\n")
        cluster.up()
        assert cluster.status()["state"] == "running"
        with psycopg.connect(cluster.dsn("postgres")) as conn:
            assert scalar(conn, "SELECT 1") == 1
    finally:
        cluster.down("immediate")
        shutil.rmtree(home, ignore_errors=True)
