"""`tally bench --quick` must keep working: it runs every scenario and emits the table, JSON and chart.
No timing is asserted here; figures belong in bench/RESULTS.md."""

import json

from rich.console import Console

from bench.runner import RESULTS_DIR, run
from bench.scenarios import Scale
from tests.conftest import CLUSTER


def test_quick_bench_runs_every_scenario_and_writes_its_outputs():
    scale = Scale.quick()
    scale.seconds = 1
    console = Console(record=True, width=200)
    results = run(CLUSTER.dsn("postgres"), scale, [], console, quick=True)
    assert {r.scenario.split()[0] for r in results} == {f"P{i}" for i in range(1, 9)} | {"P1b", "P1g"}
    assert all(r.value == r.value for r in results)  # no NaN: every figure was measured
    text = console.export_text()
    assert "pgtally benchmarks" in text and "P7 storage" in text
    saved = json.loads((RESULTS_DIR / "latest.json").read_text())
    assert saved["quick"] is True and len(saved["results"]) == len(results)
    assert saved["machine"]["postgresql"].startswith("15")
    assert (RESULTS_DIR / "ratios.png").stat().st_size > 1000
