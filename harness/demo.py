"""The main job: a realistic month of traffic through log_event, then pg_cron, trending and admin views."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import ROOT
from harness.db import create_database
from harness.migrate import migrate
from harness.traffic import Call, simulate

LOG_CALL = (
    "SELECT tally.log_event(target_type => %s, target_id => %s, kind => %s, user_id => %s, session_id => %s,"
    " ip => %s, user_agent => %s, referrer => %s)::text"
    " FROM (SELECT set_config('tally.clock', %s, false)) AS clock"
)
BATCH = 400


@dataclass
class DemoResult:
    database: str
    calls: int
    outcomes: dict[str, int] = field(default_factory=dict)
    trending: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    chart: Path | None = None
    cron_rollup: bool = False


def seed_catalogue(conn: psycopg.Connection[Any], size: int, seed: int) -> list[tuple[str, str, str | None, str]]:
    """Creates the host rows in SQL and returns them in a seeded popularity order."""
    conn.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
    for target_type, table, share in (("snippet", "snippets", 0.5), ("template", "templates", 0.3),
                                      ("document", "documents", 0.2)):
        conn.execute(
            sql.SQL(
                "INSERT INTO tally.{} (id, slug, owner_id, visibility)"
                " SELECT md5({} || g)::uuid::text, {} || '-' || g, 'owner-' || (g %% 40),"
                " CASE WHEN g %% 10 = 0 THEN 'private' WHEN g %% 10 = 1 THEN 'unlisted' ELSE 'public' END"
                " FROM generate_series(1, %s) AS g"
            ).format(sql.Identifier(table), sql.Literal(target_type), sql.Literal(target_type)),
            [max(1, int(size * share))],
        )
    rows = conn.execute(
        "SELECT target_type, target_id, owner_id, visibility FROM ("
        " SELECT 'snippet' AS target_type, id AS target_id, owner_id, visibility FROM tally.snippets"
        " UNION ALL SELECT 'template', id, owner_id, visibility FROM tally.templates"
        " UNION ALL SELECT 'document', id, owner_id, visibility FROM tally.documents) AS t"
        " ORDER BY md5(target_id || %s)",
        [str(seed)],
    ).fetchall()
    return [(str(r[0]), str(r[1]), r[2], str(r[3])) for r in rows]


def _send(dsn: str, calls: list[Call], progress: Progress, task: Any, errors: list[BaseException]) -> None:
    """Makes the calls in order, pipelined; a Sync after each makes every call its own transaction."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for start in range(0, len(calls), BATCH):
                chunk = calls[start : start + BATCH]
                with conn.pipeline() as pipeline:
                    for c in chunk:
                        conn.execute(LOG_CALL, (c.target_type, c.target_id, c.kind, c.user_id, c.session_id, c.ip,
                                                c.user_agent, c.referrer, c.at.isoformat()))
                        pipeline.sync()
                progress.advance(task, len(chunk))
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)


class DemoRefused(RuntimeError):
    """The demo database holds something the demo did not make; --reset drops it anyway."""


# What the demo's database may hold besides pgtally's own schemas and the three built-in target types.
FOREIGN_OBJECTS = """
SELECT
    (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()),
    ARRAY(SELECT t.target_type FROM tally.target_types AS t
          WHERE t.target_type NOT IN ('snippet', 'template', 'document') ORDER BY 1),
    ARRAY(SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class AS c
          JOIN pg_namespace AS n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
            AND n.nspname NOT IN ('tally', 'tally_host', 'tally_dblink', 'cron', 'information_schema')
            AND n.nspname !~ '^pg_' ORDER BY 1 LIMIT 10)
"""


def _check_can_drop(dsn: str, database: str, reset: bool) -> None:
    """Refuses to drop a demo database in use, or holding types or tables the demo did not create."""
    if reset:
        return
    target = make_conninfo(dsn, dbname=database)
    try:
        with psycopg.connect(target, autocommit=True) as conn:
            ours = conn.execute("SELECT to_regclass('tally.target_types') IS NOT NULL").fetchone()
            row = conn.execute(FOREIGN_OBJECTS).fetchone() if ours and ours[0] else None
    except psycopg.OperationalError:
        return  # no such database yet
    if row is None:
        if_not_ours = "it exists and has no pgtally schema"
        raise DemoRefused(f"database {database} {if_not_ours}: not dropped (use --reset, or --database NAME)")
    others, types, tables = row
    reasons = []
    if others:
        reasons.append(f"{others} other connection(s) (tally listen? psql?)")
    if types:
        reasons.append("your registered target types " + ", ".join(types))
    if tables:
        reasons.append("tables outside pgtally: " + ", ".join(tables))
    if reasons:
        raise DemoRefused(f"the demo would drop database {database}, which has " + "; ".join(reasons)
                          + ". Run again with --reset to drop it anyway, or choose --database NAME.")


def run_demo(
    dsn: str,
    *,
    database: str = "tally_demo",
    events: int = 40_000,
    days: int = 30,
    catalogue_size: int = 3_000,
    clients: int = 4,
    seed: int = 42,
    wait_for_cron: bool = True,
    chart_dir: Path = ROOT / "demo-output",
    console: Console | None = None,
    reset: bool = False,
) -> DemoResult:
    console = console or Console()
    _check_can_drop(dsn, database, reset)
    demo_dsn = create_database(dsn, database)
    console.print(f"[bold]pgtally demo[/bold] in database [cyan]{database}[/cyan]")
    migrate(demo_dsn)
    # Whole minutes: rate-limit windows then fall the same way on every run, so a seed reproduces outcomes.
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        # The documented clock override lets log_event place the simulated month in the past.
        conn.execute("UPDATE tally.settings SET clock_override = true")
        conn.execute("SELECT tally.create_partitions(since => (now() - make_interval(days => %s))::date)", [days])
        catalogue = seed_catalogue(conn, catalogue_size, seed)
    traffic = simulate(catalogue, events=events, days=days, end=end, seed=seed, shards=clients)
    console.print(f"catalogue: {len(catalogue)} targets; simulating {len(traffic.calls)} calls over {days} days "
                  f"from {clients} connections")

    errors: list[BaseException] = []
    with Progress(TextColumn("log_event"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("calls", total=len(traffic.calls))
        threads = [threading.Thread(target=_send, args=(demo_dsn, traffic.for_shard(s), progress, task, errors))
                   for s in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]

    result = DemoResult(database=database, calls=len(traffic.calls))
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        result.cron_rollup = _rollup(conn, console, wait_for_cron)
        _report(conn, console, result)
        result.chart = _chart(conn, chart_dir)
    if result.chart:
        console.print(f"\nchart written to [cyan]{result.chart}[/cyan]")
    _print_connections(demo_dsn, console)
    return result


DEMO_APP_ROLE = "tally_demo_app"


def _print_connections(demo_dsn: str, console: Console) -> None:
    """Where to go next: the demo database's DSN, and one for a login role in tally_app (made here)."""
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        conn.execute(f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{DEMO_APP_ROLE}') THEN
                    CREATE ROLE {DEMO_APP_ROLE} LOGIN IN ROLE tally_app;
                END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$""")
    console.print(f"\ndemo database:    [cyan]{demo_dsn}[/cyan]")
    console.print(f"application role: [cyan]{make_conninfo(demo_dsn, user=DEMO_APP_ROLE)}[/cyan]"
                  " (tally_app: log_event, trending, counters)")
    console.print(f"next: [bold]tally psql --dsn '{demo_dsn}'[/bold] or [bold]tally listen --dsn '{demo_dsn}'[/bold]")


def _rollup(conn: psycopg.Connection[Any], console: Console, wait_for_cron: bool) -> bool:
    """Lets pg_cron run the rollup job (counting down), or runs it directly. True when pg_cron did it."""
    if wait_for_cron and conn.execute("SELECT tally.cron_location() IS NOT NULL").fetchone() == (True,):
        conn.execute("SELECT * FROM tally.schedule_jobs(rollup => '* * * * *')")
        console.print("scheduled pg_cron job [cyan]tally_rollup[/cyan] every minute for the demo (afterwards back to"
                      " its default, every 5 minutes); waiting for pg_cron to run it")
        deadline = time.monotonic() + 130
        with Progress(TextColumn("{task.description}"), console=console, transient=True) as progress:
            task = progress.add_task("")
            while time.monotonic() < deadline:
                done = conn.execute(
                    "SELECT count(*) FROM tally.job_status WHERE jobname LIKE 'tally\\_rollup@%%'"
                    " AND last_status = 'succeeded'"
                ).fetchone()
                if done and done[0]:
                    break
                progress.update(task, description=f"waiting for pg_cron: {int(deadline - time.monotonic())} s left")
                time.sleep(1)
        conn.execute("SELECT * FROM tally.schedule_jobs()")  # back to the default: every 5 minutes
        ran = conn.execute("SELECT count(*) FROM tally.rollup_runs WHERE status = 'ok' AND events > 0").fetchone()
        if ran and ran[0]:
            console.print("[green]pg_cron ran the rollup job[/green] (counters, daily counts and trending scores)")
            return True
        console.print("[yellow]pg_cron did not run in time; running the job directly[/yellow]")
    conn.execute("CALL tally.rollup_job()")
    console.print("ran the rollup job directly (CALL tally.rollup_job()), not through pg_cron")
    return False


def _table(console: Console, title: str, conn: psycopg.Connection[Any], query: str,
           params: list[Any] | None = None, empty: str = "(no rows)") -> list[tuple[Any, ...]]:
    cur = conn.execute(query.encode(), params)
    rows = cur.fetchall()
    # The title on its own line: as a table title it would wrap to the table's width.
    console.print(f"\n[bold]{title}[/bold]", soft_wrap=True)
    if not rows:
        console.print(empty)
        return rows
    table = Table()
    for column in cur.description or []:
        table.add_column(column.name)
    for row in rows:
        table.add_row(*("" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
    return rows


def _report(conn: psycopg.Connection[Any], console: Console, result: DemoResult) -> None:
    rows = _table(console, "Outcomes by kind (logged = events; the rest from tally.discard_log)", conn, """
        SELECT kind, outcome, sum(n)::bigint AS calls FROM (
            SELECT e.kind, 'logged' AS outcome, count(*) AS n FROM tally.events AS e GROUP BY e.kind
            UNION ALL
            SELECT d.kind, d.reason::text, sum(d.count) FROM tally.discard_log AS d GROUP BY d.kind, d.reason
        ) AS o GROUP BY kind, outcome ORDER BY kind, calls DESC""")
    for _, outcome, n in rows:
        result.outcomes[outcome] = result.outcomes.get(outcome, 0) + int(n)
    for target_type in ("snippet", "template", "document"):
        for period in ("7d", "30d"):
            result.trending[f"{target_type}:{period}"] = _table(
                console, f"Trending {target_type}s, {period} (viewers: in the window; counters: all time)", conn,
                "SELECT slug, score, viewers, views AS views_all_time, copies AS copies_all_time,"
                " downloads AS downloads_all_time, uses AS uses_all_time FROM tally.trending(%s, %s, 10)",
                [target_type, period], empty=f"no {target_type} had events in the last {period}")
    _table(console, "High-volume IPs, last 30 days, 150 calls or more (tally.high_volume_ips)", conn,
           "SELECT host(ip) AS ip, events, rejected, targets, last_at FROM tally.high_volume_ips('30 days', 150)",
           empty="none with 150 or more logged or rate-limited calls")
    _table(console, "tally.job_status", conn,
           "SELECT coalesce(jobname, '(no pg_cron job scheduled)') AS jobname, schedule, last_status,"
           " last_rollup_status, pending_events, rollup_lag"
           " FROM tally.job_status")


def _label(slug: str, target_type: str) -> str:
    """A slug, with its type only when the slug does not already say it."""
    return slug if slug.startswith(target_type) else f"{slug} ({target_type})"


def _chart(conn: psycopg.Connection[Any], directory: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = conn.execute(
        "SELECT target_type, target_id, slug, score FROM tally.trending_30d ORDER BY score DESC LIMIT 5"
    ).fetchall()
    if not top:
        return None
    fig, (daily_ax, score_ax) = plt.subplots(1, 2, figsize=(15, 5.5))
    for target_type, target_id, slug, _ in top:
        # Every day of the window, days without events as zero (a line must not bridge a gap).
        series = conn.execute(
            "SELECT g.day::date, coalesce(sum(d.count), 0)"
            " FROM generate_series((SELECT min(day) FROM tally.daily_counts),"
            " (SELECT max(day) FROM tally.daily_counts), interval '1 day') AS g (day)"
            " LEFT JOIN tally.daily_counts AS d ON d.day = g.day AND d.target_type = %s AND d.target_id = %s"
            " GROUP BY 1 ORDER BY 1", [target_type, target_id]).fetchall()
        daily_ax.plot([d for d, _ in series], [int(n) for _, n in series], marker=".", label=_label(slug, target_type))
    daily_ax.set_title("Daily events of the 5 best targets over 30 days (tally.daily_counts)")
    daily_ax.set_xlabel("day (UTC)")
    daily_ax.set_ylabel("events per day (all kinds)")
    daily_ax.set_ylim(bottom=0)
    daily_ax.yaxis.get_major_locator().set_params(integer=True)
    daily_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    daily_ax.tick_params(axis="x", rotation=45)
    ranked = conn.execute("SELECT slug, target_type, score FROM tally.trending_7d ORDER BY score DESC LIMIT 10"
                          ).fetchall()
    score_ax.barh([_label(r[0], r[1]) for r in ranked][::-1], [float(r[2]) for r in ranked][::-1])
    score_ax.set_title("Trending, last 7 days (tally.trending_7d)")
    row = conn.execute("SELECT date_part('day', trending_half_life) FROM tally.settings").fetchone()
    half_life = f"{row[0]:g}" if row else "half-life"
    score_ax.set_xlabel(f"score: sum of events x kind weight x 0.5^(age in days / {half_life})")
    score_ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "demo.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
