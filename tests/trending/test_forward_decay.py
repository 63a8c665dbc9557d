"""The scores the rollup keeps (forward decay, daily window steps) equal a from-scratch computation from
daily_counts after random histories, missed days, late events and half-life or weight changes."""

import random
from datetime import date, timedelta

import pytest

from tests.conftest import scalar

RECOMPUTE = """
SELECT dc.target_type || ':' || dc.target_id,
       sum(dc.count * k.weight::float8 * power(0.5::float8, (%(day)s::date - dc.day) / %(half_life)s::float8))
FROM tally.daily_counts AS dc JOIN tally.kinds AS k ON k.kind = dc.kind AND k.weight > 0
WHERE dc.day > %(day)s::date - %(period)s AND dc.day <= %(day)s::date
GROUP BY 1
"""
KINDS = ["view", "copy", "download", "template_use"]
# The kept scores one row per window and target, as the windows' own columns hold them.
BY_PERIOD = """(
    SELECT 7 AS period, target_type, target_id, score_7d AS score, rank_7d AS rank, events_7d AS events,
        viewers_7d AS viewers
    FROM tally.trending_scores WHERE events_7d > 0
    UNION ALL
    SELECT 30, target_type, target_id, score_30d, rank_30d, events_30d, viewers_30d FROM tally.trending_scores
) AS s"""


def insert_events(db, day: date, target_id: str, kind: str, n: int) -> None:
    # Straight into the table (as the owner): the trigger still validates; no debounce without a visitor.
    db.execute("INSERT INTO tally.events (created_at, target_type, target_id, kind) "
                "SELECT %s::timestamptz, 'snippet', %s, %s FROM generate_series(1, %s)",
                [f"{day} 12:00:00+00", target_id, kind, n])


def rollup_on(db, clock, day: date) -> None:
    clock(db, f"{day} 18:00:00+00")
    assert scalar(db, "SELECT status FROM tally.rollup()") == "ok"


def assert_matches_recompute(db, day: date) -> None:
    half_life = scalar(db, "SELECT extract(epoch FROM trending_half_life) / 86400 FROM tally.settings")
    for period in (7, 30):
        expected = dict(db.execute(RECOMPUTE, {"day": day, "period": period, "half_life": half_life}).fetchall())
        kept = dict(db.execute(f"SELECT target_type || ':' || target_id, score FROM tally.trending_{period}d"
                               ).fetchall())
        assert kept.keys() == expected.keys(), (day, period)
        for key, score in expected.items():
            assert kept[key] == pytest.approx(score, rel=1e-9, abs=0), (day, period, key)
        for target_type in {k.split(":", 1)[0] for k in expected}:
            ranked = [r[0] for r in db.execute("SELECT target_id FROM tally.trending(%s, %s, 1000)",
                                               [target_type, f"{period}d"])]
            order = sorted((k for k in expected if k.startswith(target_type + ":")),
                           key=lambda k: (-float(f"{expected[k]:.11g}"), k.split(":", 1)[1]))
            assert ranked == [k.split(":", 1)[1] for k in order], (day, period, target_type)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_scores_equal_a_recompute_after_random_histories(db, targets, clock, seed):
    rng = random.Random(seed)
    ids = [targets(slug=f"t{i}") for i in range(24)]
    twins = ids[:4]  # identical histories: exact ties, which must order as a recompute does (by id)
    day = date(2026, 9, 1)
    for step in range(75):
        day += timedelta(days=1 if rng.random() < 0.8 else rng.randint(2, 9))  # days without any rollup
        for target_id in rng.sample(ids[4:], rng.randint(0, 8)):
            insert_events(db, day, target_id, rng.choice(KINDS), rng.randint(1, 6))
        if step % 3 == 0:
            for target_id in twins:
                insert_events(db, day, target_id, "copy", 2)
        if rng.random() < 0.2:  # a late event for a recent day (a transaction that committed late)
            insert_events(db, day - timedelta(days=rng.randint(1, 10)), rng.choice(ids), "download", 1)
        if step == 40:
            db.execute("UPDATE tally.settings SET trending_half_life = '2 days'")
        if step == 55:
            db.execute("UPDATE tally.kinds SET weight = 4 WHERE kind = 'copy'")
        if rng.random() < 0.7:
            rollup_on(db, clock, day)
            assert_matches_recompute(db, day)
    rollup_on(db, clock, day)
    assert_matches_recompute(db, day)


def test_a_batch_is_added_to_the_scores_exactly_once(db, targets, clock):
    sid = targets()
    insert_events(db, date(2026, 11, 20), sid, "copy", 3)
    rollup_on(db, clock, date(2026, 11, 20))
    before = db.execute(f"SELECT period, score, events FROM {BY_PERIOD} ORDER BY period").fetchall()
    rollup_on(db, clock, date(2026, 11, 20))
    db.execute("SELECT tally.refresh_trending(); SELECT tally.housekeeping()")
    assert db.execute(f"SELECT period, score, events FROM {BY_PERIOD} ORDER BY period").fetchall() == before
    assert [r[2] for r in before] == [3, 3]


def test_targets_whose_last_day_left_the_window_are_removed_without_residue(db, targets, clock):
    old, recent = targets(slug="old"), targets(slug="recent")
    insert_events(db, date(2026, 11, 1), old, "view", 5)
    insert_events(db, date(2026, 11, 1), recent, "view", 5)
    rollup_on(db, clock, date(2026, 11, 1))
    insert_events(db, date(2026, 11, 6), recent, "view", 1)
    rollup_on(db, clock, date(2026, 11, 6))
    rollup_on(db, clock, date(2026, 11, 8))  # 2026-11-01 leaves the 7-day window
    rows = {r[0]: r[1:] for r in db.execute(
        "SELECT target_id, score_7d, rank_7d, events_7d, viewers_7d FROM tally.trending_scores")}
    assert rows[old] == (0.0, 0.0, 0, 0)  # exactly zero, not a float residue of 5 - 5
    assert rows[recent][2] == 1 and rows[recent][0] > 0
    assert [r[0] for r in db.execute("SELECT target_id FROM tally.trending_7d")] == [recent]
    rollup_on(db, clock, date(2026, 12, 1))  # 24 days without a rollup
    assert db.execute("SELECT target_id, score_7d, rank_7d, events_7d, events_30d FROM tally.trending_scores"
                      ).fetchall() == [(recent, 0.0, 0.0, 0, 1)]


def test_the_landmark_is_re_based_before_the_exponent_grows_large(db, targets, clock):
    sid = targets()
    insert_events(db, date(2026, 11, 1), sid, "copy", 1)
    rollup_on(db, clock, date(2026, 11, 1))
    epoch = scalar(db, "SELECT epoch FROM tally.trending_state")
    day = date(2026, 11, 1) + timedelta(days=601)  # 200 half-lives of 3 days past the landmark
    insert_events(db, day, sid, "copy", 1)
    rollup_on(db, clock, day)
    assert scalar(db, "SELECT epoch FROM tally.trending_state") == day - timedelta(days=29) != epoch
    assert_matches_recompute(db, day)


def test_rebuild_is_for_admins_and_agrees_with_the_kept_scores(db, targets, clock, connect):
    from tests.conftest import ADMIN_LOGIN
    for i in range(5):
        insert_events(db, date(2026, 11, 20 + i % 3), targets(), KINDS[i % 4], i + 1)
    rollup_on(db, clock, date(2026, 11, 22))
    kept = db.execute(f"SELECT period, target_id, rank FROM {BY_PERIOD} ORDER BY 1, 2").fetchall()
    admin = connect(ADMIN_LOGIN)
    clock(admin, "2026-11-22 18:00:00+00")
    admin.execute("SELECT tally.rebuild_trending()")
    assert db.execute(f"SELECT period, target_id, rank FROM {BY_PERIOD} ORDER BY 1, 2").fetchall() == kept


TOP_INVARIANT = f"""
SELECT (SELECT array_agg((target_id, score, viewers) ORDER BY rank DESC, target_id) FROM tally.trending_top
        WHERE period = %(period)s AND target_type = 'snippet')
     = (SELECT array_agg((target_id, score, viewers)) FROM (
            SELECT target_id, score, viewers FROM {BY_PERIOD} WHERE period = %(period)s AND target_type = 'snippet'
            ORDER BY rank DESC, target_id LIMIT tally.top_size()) AS best)
"""


def test_the_top_table_holds_exactly_the_best_scores_across_batches_and_steps(db, clock):
    db.execute("INSERT INTO tally.snippets (id, slug) SELECT 'n' || g, 'n' || g FROM generate_series(1, 2600) AS g")
    rng = random.Random(7)
    day = date(2026, 11, 1)
    for step in range(6):
        ids = rng.sample(range(1, 2601), 900)
        db.execute("INSERT INTO tally.events (created_at, target_type, target_id, kind) "
                   "SELECT %s::timestamptz, 'snippet', 'n' || i, 'copy' FROM unnest(%s::int[]) AS i, "
                   "generate_series(1, 1 + i %% 5)", [f"{day} 12:00:00+00", ids])
        rollup_on(db, clock, day)
        for period in (7, 30):
            assert scalar(db, TOP_INVARIANT, {"period": period}), (step, period)
        day += timedelta(days=rng.choice([1, 1, 3]))
    assert scalar(db, "SELECT count(*) FROM tally.trending_top WHERE period = 30") == 2000


def test_more_unlisted_targets_than_the_top_holds_still_leave_a_full_list(db, targets, clock):
    shown = [targets(slug=f"shown{i}") for i in range(3)]
    for i, sid in enumerate(shown):
        insert_events(db, date(2026, 11, 25), sid, "copy", i + 1)
    rollup_on(db, clock, date(2026, 11, 25))
    # 2,100 better-scored targets that are not listed (here: not in the host table at all).
    db.execute("INSERT INTO tally.trending_scores SELECT 'snippet', 'ghost' || g, 1e6 + g, 1e6 + g, 1, 0, "
               "1e6 + g, 1e6 + g, 1, 0, '2026-11-25' FROM generate_series(1, 2100) AS g")
    db.execute("SELECT tally.rebuild_top()")
    assert [r[0] for r in db.execute("SELECT slug FROM tally.trending('snippet', '7d', 3)")] == \
        ["shown2", "shown1", "shown0"]
