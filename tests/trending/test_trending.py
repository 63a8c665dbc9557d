"""Trending: weighted, time-decayed scores kept by the rollup, listed targets only (decided at read time)."""

import threading

import pytest
from psycopg import errors

from tests.conftest import log, nested_plans, run_together, scalar


def activity(db, clock, target_type, target_id, at, **kinds):
    clock(db, at)
    for kind, n in kinds.items():
        for i in range(n):
            assert log(db, target_type, target_id, kind, session_id=f"{at}-{i}") == "logged"


def refresh(db):
    """Rollup, then read: the rollup keeps the scores, no other call is needed."""
    assert scalar(db, "SELECT status FROM tally.rollup()") == "ok"


def ranking(db, target_type="snippet", period="7d", lim=20):
    return [r[0] for r in db.execute("SELECT slug FROM tally.trending(%s, %s, %s)", [target_type, period, lim])]


def test_score_weights_kinds(db, targets, clock):
    viewed, copied = targets(slug="viewed"), targets(slug="copied")
    activity(db, clock, "snippet", viewed, "2026-11-24 10:00+00", view=5)
    activity(db, clock, "snippet", copied, "2026-11-24 10:00+00", copy=2)
    clock(db, "2026-11-25 00:00+00")
    refresh(db)
    rows = db.execute("SELECT slug, score FROM tally.trending('snippet')").fetchall()
    assert [slug for slug, _ in rows] == ["copied", "viewed"]
    assert rows[0][1] / rows[1][1] == pytest.approx(6 / 5)


def test_recent_activity_ranks_higher_than_the_same_activity_earlier(db, targets, clock):
    old, new = targets(slug="old"), targets(slug="new")
    activity(db, clock, "snippet", old, "2026-11-19 10:00+00", copy=3)
    activity(db, clock, "snippet", new, "2026-11-25 10:00+00", copy=3)
    refresh(db)
    scores = dict(db.execute("SELECT slug, score FROM tally.trending('snippet')").fetchall())
    assert ranking(db) == ["new", "old"]
    # Half-life 3 days by default: six days older is worth a quarter.
    assert scores["old"] / scores["new"] == pytest.approx(0.25)


def test_windows_cover_seven_and_thirty_days(db, targets, clock):
    recent, month_old = targets(slug="recent"), targets(slug="month-old")
    activity(db, clock, "snippet", recent, "2026-11-25 10:00+00", view=1)
    activity(db, clock, "snippet", month_old, "2026-11-10 10:00+00", view=1)
    activity(db, clock, "snippet", targets(slug="ancient"), "2026-10-01 10:00+00", view=1)
    clock(db, "2026-11-25 12:00+00")
    refresh(db)
    assert ranking(db, period="7d") == ["recent"]
    assert ranking(db, period="30d") == ["recent", "month-old"]


def test_only_listed_targets_appear(db, targets, clock):
    public = targets(slug="public")
    unlisted = targets(slug="unlisted", visibility="unlisted")
    private = targets(slug="private", visibility="private", owner_id="alice")
    clock(db, "2026-11-25 10:00+00")
    log(db, "snippet", public, "view", session_id="a")
    log(db, "snippet", unlisted, "view", session_id="a")
    log(db, "snippet", private, "view", user_id="alice")
    refresh(db)
    assert ranking(db) == ["public"]


def test_target_made_private_leaves_trending_at_once(db, targets, clock):
    sid = targets(slug="soon-private")
    activity(db, clock, "snippet", sid, "2026-11-25 10:00+00", copy=1)
    refresh(db)
    assert ranking(db) == ["soon-private"]
    db.execute("UPDATE tally.snippets SET visibility = 'private' WHERE id = %s", [sid])
    assert ranking(db) == []
    assert db.execute("SELECT count(*) FROM tally.trending_7d").fetchone() == (0,)
    db.execute("UPDATE tally.snippets SET visibility = 'public' WHERE id = %s", [sid])
    assert ranking(db) == ["soon-private"]


def test_unlisted_targets_at_the_top_do_not_shorten_the_list(db, targets, clock):
    hidden = [targets(slug=f"hidden{i}", visibility="unlisted") for i in range(40)]
    shown = [targets(slug=f"shown{i}") for i in range(5)]
    clock(db, "2026-11-25 10:00+00")
    for sid in hidden:
        db.execute("INSERT INTO tally.events (created_at, target_type, target_id, kind) "
                   "SELECT '2026-11-25 10:00+00', 'snippet', %s, 'copy' FROM generate_series(1, 10)", [sid])
    for i, sid in enumerate(shown):
        activity(db, clock, "snippet", sid, "2026-11-25 10:00+00", copy=i + 1)
    refresh(db)
    assert ranking(db, lim=3) == ["shown4", "shown3", "shown2"]
    assert ranking(db, lim=20) == [f"shown{i}" for i in range(4, -1, -1)]


def test_trending_is_per_type_and_returns_counters(db, targets, clock):
    sid, tid = targets("snippet", slug="s"), targets("template", slug="t")
    activity(db, clock, "snippet", sid, "2026-11-25 10:00+00", view=2, copy=1)
    activity(db, clock, "template", tid, "2026-11-25 10:00+00", template_use=3)
    refresh(db)
    row = db.execute("SELECT slug, views, copies, downloads, uses FROM tally.trending('template')").fetchone()
    assert row == ("t", 0, 0, 0, 3)
    assert ranking(db, "snippet") == ["s"]


def test_trending_reads_the_scores_not_events_or_daily_rows(db, targets, clock):
    sid = targets(slug="kept")
    activity(db, clock, "snippet", sid, "2026-11-25 10:00+00", view=1)
    refresh(db)
    db.execute("TRUNCATE tally.events")
    assert ranking(db) == ["kept"]
    db.execute("SELECT tally.rebuild_trending()")
    assert ranking(db) == ["kept"], "a rebuild reads daily_counts, which outlive raw events"


def test_lim_caps_the_list(db, targets, clock):
    for i in range(5):
        activity(db, clock, "snippet", targets(slug=f"s{i}"), "2026-11-25 10:00+00", view=i + 1)
    refresh(db)
    assert ranking(db, lim=2) == ["s4", "s3"]


@pytest.mark.parametrize(("target_type", "period", "lim"), [
    ("snippet", "1d", 20), ("snippet", "7d", 0), ("snippet", "30d", 1001), ("widget", "7d", 20),
    ("snippet", None, 20),
])
def test_bad_arguments_raise_22023(db, target_type, period, lim):
    with pytest.raises(errors.InvalidParameterValue):
        db.execute("SELECT * FROM tally.trending(%s, %s, %s)", [target_type, period, lim])


def test_trending_reads_a_range_of_the_top_index(db):
    # 100k entities, as the benchmark has
    db.execute("INSERT INTO tally.trending_scores SELECT t, 'x' || g, g, g, 1, 0, g, g, 1, 0, '2026-11-25' "
               "FROM generate_series(1, 50000) AS g, unnest('{snippet,template}'::text[]) AS t")
    db.execute("SELECT tally.rebuild_top()")
    db.execute("ANALYZE tally.trending_scores; ANALYZE tally.trending_top")
    assert db.execute("SELECT count(*) FROM tally.trending_top").fetchone() == (4 * 2000,)
    plan = "\n".join(r[0] for r in db.execute(
        "EXPLAIN SELECT c.target_id, c.rank FROM tally.trending_top AS c"
        " WHERE c.period = 7 AND c.target_type = 'snippet' ORDER BY c.rank DESC, c.target_id LIMIT 36"))
    assert "Scan using trending_top_rank" in plan and "Sort" not in plan


def test_trending_reads_the_top_alone_when_it_suffices(db, targets, clock):
    for i in range(5):
        activity(db, clock, "snippet", targets(slug=f"s{i}"), "2026-11-25 10:00+00", view=i + 1)
    refresh(db)
    with db.transaction():
        scans = ("SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables"
                 " WHERE relid = 'tally.trending_scores'::regclass")
        before = scalar(db, scans)
        assert ranking(db, lim=3) == ["s4", "s3", "s2"]
        assert scalar(db, scans) == before


@pytest.mark.parametrize("analysed", [True, False])
def test_a_small_rollup_probes_the_scores_it_raises_whatever_their_number(db, targets, clock, analysed):
    # Cost grows with the batch, not with the scores kept: 100k scored targets, a batch of three.
    sids = [targets() for _ in range(3)]
    activity(db, clock, "snippet", sids[0], "2026-11-25 10:00+00", copy=1)
    refresh(db)
    db.execute("INSERT INTO tally.trending_scores SELECT t, 'x' || g, g, g, 1, 0, g, g, 1, 0, '2026-11-25' "
               "FROM generate_series(1, 50000) AS g, unnest('{snippet,template}'::text[]) AS t")
    if analysed:
        db.execute("ANALYZE tally.trending_scores")
    for sid in sids:
        activity(db, clock, "snippet", sid, "2026-11-25 11:00+00", copy=2)
    plans = nested_plans(db, lambda: refresh(db))
    assert "Update on trending_scores" in plans
    assert "Seq Scan on trending_scores" not in plans
    assert "trending_scores_pkey" in plans  # an Index Scan, or a Bitmap Index Scan when unanalysed
    assert ranking(db, lim=3)[:1] == [scalar(db, "SELECT slug FROM tally.snippets WHERE id = %s", [sids[0]])]


def test_reads_never_fail_or_block_during_rollups(db, targets, clock, connect):
    ids = [targets(slug=f"s{i}") for i in range(30)]
    for sid in ids:
        activity(db, clock, "snippet", sid, "2026-11-25 10:00+00", view=1)
    refresh(db)
    readers = [connect() for _ in range(4)]
    for reader in readers:
        reader.execute("SET lock_timeout = '1s'")  # a blocked read fails the test instead of waiting
    roller = connect()
    clock(roller, "2026-11-25 11:00+00")
    stop = threading.Event()

    def refresh_loop():
        for i in range(20):
            log(roller, "snippet", ids[i % len(ids)], "copy")
            roller.execute("SELECT tally.rollup()")
        stop.set()

    thread = threading.Thread(target=refresh_loop)
    thread.start()

    def read(i):
        reads = 0
        while not stop.is_set():
            assert len(ranking(readers[i])) == 20
            readers[i].execute("SELECT count(*) FROM tally.trending_30d").fetchone()
            reads += 1
        return reads

    counts = run_together(4, read)
    thread.join()
    assert sum(counts) > 0
