"""The ``tally`` command: local cluster, migrations, notifications, demo, benchmarks, docs."""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Annotated, NoReturn

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from harness.cluster import Cluster
from harness.db import create_database, describe_error, resolve_dsn, uses_local_cluster
from harness.migrate import MigrationError, migrate

app = typer.Typer(help="pgtally harness: cluster, migrations, demo, benchmarks.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
# Wide enough for the demo's and the benchmark's tables when output goes to a file or a CI log.
console = Console(width=max(Console().width, 140))

DsnOption = Annotated[
    str | None,
    typer.Option("--dsn", help="libpq connection string; default: TALLY_DSN, libpq variables, or the local cluster"),
]


_debug = False


@app.callback()
def options(
    debug: Annotated[bool, typer.Option("--debug", help="show Python tracebacks instead of one-line errors")] = False,
) -> None:
    """pgtally harness: cluster, migrations, demo, benchmarks."""
    global _debug
    _debug = debug


def main() -> NoReturn:
    """The ``tally`` entry point: connection, SQL and migration errors end in one line and exit status 1."""
    try:
        app()
    except (psycopg.Error, MigrationError, RuntimeError) as exc:
        if _debug or "--debug" in sys.argv:
            raise
        print(f"tally: {describe_error(exc)}", file=sys.stderr)
        print("(run again with --debug for the traceback)", file=sys.stderr)
        raise SystemExit(1) from None
    raise SystemExit(0)


@app.command()
def up() -> None:
    """Initialise and start the local cluster (pg_cron preloaded) and migrate its database tally. Safe to run again."""
    cluster = Cluster.default()
    cluster.up()
    plan = migrate(cluster.dsn())
    _print_status(cluster)
    console.print(f"database tally: {plan.summary(dry_run=False)[0]}", highlight=False)


@app.command()
def down(
    mode: Annotated[str, typer.Option(help="pg_ctl stop mode: smart, fast or immediate")] = "fast",
) -> None:
    """Stop the local cluster."""
    Cluster.default().down(mode)
    console.print("stopped")


@app.command()
def status(dsn: DsnOption = None) -> None:
    """Show the local cluster's state and the databases with pgtally installed, with their DSNs."""
    if uses_local_cluster(dsn):
        _print_status(Cluster.default())
        if not Cluster.default().running():
            return
    _print_databases(resolve_dsn(dsn))


def _print_status(cluster: Cluster) -> None:
    table = Table(show_header=False)
    for key, value in cluster.status().items():
        table.add_row(key, value)
    console.print(table)


def _print_databases(dsn: str) -> None:
    """Each database of the server that has pgtally, its migration level, and DSNs to use."""
    from psycopg.conninfo import make_conninfo

    table = Table("database", "migrations", "pending events", "dsn (as you)", "dsn (application role)")
    with psycopg.connect(dsn, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname")]
    for name in names:
        db_dsn = make_conninfo(dsn, dbname=name)
        try:
            with psycopg.connect(db_dsn, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute(
                    "SELECT (SELECT max(version) FROM tally.schema_migrations),"
                    " (SELECT count(*) FROM tally.events WHERE txid >= (SELECT rolled_up_below FROM tally.rollup_state)"
                    "  AND NOT tally.counted(txid, (SELECT snapshot FROM tally.rollup_state))),"
                    " (SELECT string_agg(r.rolname, ',') FROM pg_roles AS r WHERE r.rolcanlogin"
                    "  AND pg_has_role(r.oid, 'tally_app', 'MEMBER') AND NOT r.rolsuper)"
                    " WHERE to_regclass('tally.schema_migrations') IS NOT NULL").fetchone()
        except psycopg.Error:
            continue  # not ours to read, or pgtally is not there
        if not row or row[0] is None:
            continue
        app_role = (row[2] or "").split(",")[0]
        table.add_row(name, str(row[0]), str(row[1]), db_dsn,
                      make_conninfo(db_dsn, user=app_role) if app_role else "(no login role in tally_app)")
    console.print(table)
    console.print("open one with: tally psql --dsn '<dsn>'  (default: the local cluster's database tally)")


@app.command()
def psql(dsn: DsnOption = None) -> None:
    """Open psql on the pgtally database (the local cluster's, unless --dsn or TALLY_DSN says otherwise)."""
    if uses_local_cluster(dsn):
        Cluster.default().up()
    binary = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    target = resolve_dsn(dsn)
    psycopg.connect(target).close()  # a wrong DSN fails here, in one line, rather than in psql
    os.execv(binary, [binary, target])


@app.command(name="migrate")
def migrate_command(
    dsn: DsnOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would run, change nothing")] = False,
    lock_timeout: Annotated[int | None, typer.Option(
        "--lock-timeout", help="wait at most this many ms for any lock (another migrator's too); a file that "
        "times out is rolled back and the run stops (55P03): run it again later")] = None,
) -> None:
    """Apply pending migrations, then changed sql/ definitions."""
    if uses_local_cluster(dsn):
        Cluster.default().up()
    try:
        plan = migrate(resolve_dsn(dsn), dry_run=dry_run, lock_timeout_ms=lock_timeout)
    except MigrationError as exc:
        console.print(f"[red]migration refused:[/red] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from exc
    for line in plan.summary(dry_run):
        console.print(line, highlight=False, soft_wrap=True)


@app.command()
def listen(
    dsn: DsnOption = None,
    count: Annotated[int, typer.Option(help="stop after delivering this many batches (0: run until Ctrl-C)")] = 0,
    batch: Annotated[int, typer.Option(help="tags per batch (tally.next_tags lim)")] = 500,
    exec_: Annotated[str | None, typer.Option("--exec", help="shell command given each batch's tags on stdin, "
                                              "one per line; a non-zero exit is retried")] = None,
    post: Annotated[str | None, typer.Option("--post", help='URL to POST each batch to as {"tags": [...]}; a '
                                             "non-2xx answer is retried")] = None,
    once: Annotated[bool, typer.Option("--once", help="deliver what is queued, then exit")] = False,
) -> None:
    """Deliver queued cache tags (tally.revalidation_outbox) as rollups queue them; nothing is lost while it is down.

    Each batch is taken with tally.next_tags() (FOR UPDATE SKIP LOCKED), delivered (stdout, --exec or
    --post, retried with backoff), then acknowledged with tally.ack_tags() in the same transaction: a
    listener killed mid-batch leaves the batch to the next one. NOTIFY tally_revalidate only wakes it
    up. Reconnects with backoff when the server restarts.
    """
    from psycopg.conninfo import conninfo_to_dict

    from harness.revalidate import Delivery

    deliver = Delivery(command=exec_, url=post)
    target = resolve_dsn(dsn)
    where = conninfo_to_dict(target).get("dbname", "(libpq default)")
    delivered, delay, announced = 0, 0.5, False
    while True:
        try:
            with psycopg.connect(target, autocommit=True, application_name="tally listen") as conn:
                conn.execute("LISTEN tally_revalidate")  # before draining: no wake-up falls in between
                if not announced:
                    console.print(f"listening on tally_revalidate; delivering queued cache tags from database {where}"
                                  " (Ctrl-C to stop)")
                    announced = True
                else:
                    print(f"tally listen: reconnected to {where}", file=sys.stderr, flush=True)
                delay = 0.5
                while True:
                    while True:  # drain the outbox, one batch per transaction
                        with conn.transaction():
                            rows = conn.execute("SELECT id, tag FROM tally.next_tags(%s)", [batch]).fetchall()
                            if not rows:
                                break
                            deliver(list(dict.fromkeys(tag for _, tag in rows)))
                            conn.execute("SELECT tally.ack_tags(%s)", [[row_id for row_id, _ in rows]])
                        delivered += 1
                        if count and delivered >= count:
                            return
                    if once:
                        return
                    # Woken by the rollup's NOTIFY; a poll every 30 s covers tags queued by other means.
                    for _ in conn.notifies(timeout=30, stop_after=1):
                        pass
        except psycopg.OperationalError as exc:
            if not announced:
                raise  # the first connection failed: a wrong DSN is an error, not a wait
            print(f"tally listen: connection lost ({describe_error(exc)}); retrying in {delay:.1f} s",
                  file=sys.stderr, flush=True)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


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
    reset: Annotated[bool, typer.Option("--reset", help="drop the demo database even if it holds your own objects "
                                        "or has other connections")] = False,
) -> None:
    """Simulate a month of traffic through log_event, roll it up with pg_cron, show trending and admin views."""
    from harness.demo import run_demo

    if uses_local_cluster(dsn):
        Cluster.default().up()
    run_demo(resolve_dsn(dsn), database=database, events=events, days=days, catalogue_size=targets,
             clients=clients, seed=seed, wait_for_cron=not no_wait, console=console, reset=reset)


if __name__ == "__main__":
    main()
