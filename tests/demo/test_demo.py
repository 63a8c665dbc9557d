"""The main job, small: its numbers must agree with each other and with the calls it made."""

import psycopg
import pytest
from psycopg import sql
from rich.console import Console

from harness.demo import run_demo
from harness.traffic import ABUSIVE_IP
from tests.conftest import CLUSTER, scalar

DATABASE = "tally_demo_test"


@pytest.fixture
def demo_db():
    yield DATABASE
    with psycopg.connect(CLUSTER.dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))


def small_demo(tmp_path, seed=7):
    return run_demo(CLUSTER.dsn("postgres"), database=DATABASE, events=3000, days=10, catalogue_size=300,
                    clients=3, seed=seed, wait_for_cron=False, chart_dir=tmp_path, console=Console(quiet=True))


def test_demo_outcomes_add_up_and_counters_match_events(demo_db, tmp_path):
    result = small_demo(tmp_path)
    assert sum(result.outcomes.values()) == result.calls
    assert {"logged", "debounced", "rate_limited", "discarded_bot"} <= set(result.outcomes)
    with psycopg.connect(CLUSTER.dsn(DATABASE)) as conn:
        events = scalar(conn, "SELECT count(*) FROM tally.events")
        counted = scalar(conn, "SELECT sum(views + copies + downloads + uses) FROM tally.counters_live")
        rolled = scalar(conn, "SELECT sum(count) FROM tally.daily_counts")
        ips = [r[0] for r in conn.execute("SELECT host(ip) FROM tally.high_volume_ips('30 days', 50)")]
    assert result.outcomes["logged"] == events == counted == rolled
    assert ips == [ABUSIVE_IP]
    assert all(result.trending[f"{t}:30d"] for t in ("snippet", "template", "document"))
    assert result.chart is not None and result.chart.stat().st_size > 10_000


def test_demo_is_reproducible_with_a_seed(demo_db, tmp_path):
    first = small_demo(tmp_path, seed=11).outcomes
    second = small_demo(tmp_path, seed=11).outcomes
    assert first == second
