"""The ``tally`` command: local cluster, migrations, notifications, demo, benchmarks, docs."""

from __future__ import annotations

import json
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from harness.cluster import Cluster
from harness.db import create_database, resolve_dsn, uses_local_cluster
from harness.migrate import MigrationError, migrate

app = typer.Typer(help="pgtally harness: cluster, migrations, demo, benchmarks.", no_args_is_help=True)
# Wide enough for the demo's and the benchmark's tables when output goes to a file or a CI log.
console = Console(width=max(Console().width, 140))

DsnOption = Annotated[
    str | None,
    typer.Option("--dsn", help="libpq connection string; default: TALLY_DSN, libpq variables, or the local cluster"),
]


@app.command()
def up() -> None:
    """Initialise and start the local cluster (pg_cron preloaded). Safe to run again."""
    cluster = Cluster.default()
    cluster.up()
    _print_status(cluster)


@app.command()
def down(
    mode: Annotated[str, typer.Option(help="pg_ctl stop mode: smart, fast or immediate")] = "fast",
) -> None:
    """Stop the local cluster."""
    Cluster.default().down(mode)
    console.print("stopped")


@app.command()
def status() -> None:
    """Show the local cluster's state and connection string."""
    _print_status(Cluster.default())


def _print_status(cluster: Cluster) -> None:
    table = Table(show_header=False)
    for key, value in cluster.status().items():
        table.add_row(key, value)
    console.print(table)


@app.command(name="migrate")
def migrate_command(
    dsn: DsnOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would run, change nothing")] = False,
) -> None:
    """Apply pending migrations, then changed sql/ definitions."""
    if uses_local_cluster(dsn):
        Cluster.default().up()
    try:
        plan = migrate(resolve_dsn(dsn), dry_run=dry_run)
    except MigrationError as exc:
        console.print(f"[red]migration refused:[/red] {exc}")
        raise typer.Exit(1) from exc
    for line in plan.summary(dry_run):
        console.print(line, highlight=False)


@app.command()
def listen(
    dsn: DsnOption = None,
    count: Annotated[int, typer.Option(help="stop after this many notifications (0: run until Ctrl-C)")] = 0,
) -> None:
    """Print tally_revalidate notifications (cache tags) as they arrive."""
    with psycopg.connect(resolve_dsn(dsn), autocommit=True) as conn:
        conn.execute("LISTEN tally_revalidate")
        console.print("listening on tally_revalidate (Ctrl-C to stop)")
        seen = 0
        for notify in conn.notifies():
            for tag in json.loads(notify.payload):
                print(tag, flush=True)
            seen += 1
            if count and seen >= count:
                break


@app.command()
def bench(
    dsn: DsnOption = None,
    quick: Annotated[bool, typer.Option("--quick", help="tiny scale (under a minute): a smoke test for CI")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="run only these scenarios, e.g. --only P1")] = None,
    clients: Annotated[int | None, typer.Option(help="pgbench clients for P1, P2, P7")] = None,
    seconds: Annotated[int | None, typer.Option(help="seconds per pgbench run")] = None,
    events: Annotated[int | None, typer.Option(help="history size for P3 and P5")] = None,
    targets: Annotated[int | None, typer.Option(help="targets for P4 and P6")] = None,
) -> None:
    """Measure ingestion, rollup, trending and storage against baselines from the same run."""
    from bench.runner import run
    from bench.scenarios import Scale

    scale = Scale.quick() if quick else Scale()
    scale.clients = clients or scale.clients
    scale.seconds = seconds or scale.seconds
    scale.history = events or scale.history
    scale.targets = targets or scale.targets
    if uses_local_cluster(dsn):
        Cluster.default().up()
    run(resolve_dsn(dsn, "postgres"), scale, [o.upper() for o in only or []], console, quick)


@app.command()
def docs(dsn: DsnOption = None) -> None:
    """Write docs/sql-api.md from the COMMENT ON text of a freshly migrated scratch database."""
    from harness.docs import DOCS_PATH, render

    if uses_local_cluster(dsn):
        Cluster.default().up()
    scratch = create_database(resolve_dsn(dsn), "tally_docs")
    migrate(scratch)
    with psycopg.connect(scratch) as conn:
        text = render(conn)
    DOCS_PATH.parent.mkdir(exist_ok=True)
    DOCS_PATH.write_text(text)
    console.print(f"wrote {DOCS_PATH}")


@app.command()
def demo(
    dsn: DsnOption = None,
    events: Annotated[int, typer.Option(help="log_event calls to simulate")] = 40_000,
    days: Annotated[int, typer.Option(help="days of traffic, ending now")] = 30,
    targets: Annotated[int, typer.Option(help="snippets + templates + documents to create")] = 3_000,
    clients: Annotated[int, typer.Option(help="concurrent connections")] = 4,
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same outcomes")] = 42,
    database: Annotated[str, typer.Option(help="database to (re)create for the demo")] = "tally_demo",
    no_wait: Annotated[bool, typer.Option("--no-wait", help="run the rollup job directly, not via pg_cron")] = False,
) -> None:
    """Simulate a month of traffic through log_event, roll it up with pg_cron, show trending and admin views."""
    from harness.demo import run_demo

    if uses_local_cluster(dsn):
        Cluster.default().up()
    run_demo(resolve_dsn(dsn), database=database, events=events, days=days, catalogue_size=targets,
             clients=clients, seed=seed, wait_for_cron=not no_wait, console=console)


if __name__ == "__main__":
    app()
