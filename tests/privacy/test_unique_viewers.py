"""Unique viewers: exact distinct visitors per day, and their sum over the trending windows."""

import random
from collections import defaultdict

from tests.conftest import log, scalar


def test_daily_viewers_equal_exact_distinct_visitors_on_synthetic_data(db, targets, clock):
    ids = [targets() for _ in range(4)]
    rng = random.Random(7)
    seen: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for day in ("2026-11-18", "2026-11-19", "2026-11-20"):
        for batch in range(3):  # several rollups a day: a visitor may reappear in a later batch
            for i in range(60):
                clock(db, f"{day} {8 + batch}:{i:02d}:00+00")
                target, kind = rng.choice(ids), rng.choice(["view", "copy", "download"])
                who = rng.choice([{"user_id": f"u{rng.randrange(15)}"}, {"session_id": f"s{rng.randrange(15)}"},
                                  {"ip": f"198.51.100.{rng.randrange(15)}", "user_agent": f"agent {rng.randrange(2)}"}])
                if log(db, "snippet", target, kind, **who) == "logged":
                    seen[(day, target, kind)].add(repr(sorted(who.items())))
            db.execute("SELECT tally.rollup()")
    rows = db.execute("SELECT day::text, target_id, kind, viewers FROM tally.daily_counts").fetchall()
    # Viewers are counted for the kinds counted as views; other kinds show 0.
    assert {(d, t, k): v for d, t, k, v in rows} == {
        key: len(who) if key[2] == "view" else 0 for key, who in seen.items()}
    assert sum(v for *_, v in rows) > 50


def test_events_without_an_identity_are_not_viewers(db, targets):
    sid = targets()
    log(db, "snippet", sid, "view")
    log(db, "snippet", sid, "view", session_id="s")
    db.execute("SELECT tally.rollup()")
    assert db.execute("SELECT count, viewers FROM tally.daily_counts").fetchall() == [(2, 1)]


def test_trending_viewers_are_the_sum_of_daily_viewers_in_the_window(db, targets, clock):
    sid = targets(slug="watched")
    expected = {}
    for day, visitors in (("2026-11-10", 3), ("2026-11-15", 2), ("2026-11-20", 4)):
        clock(db, f"{day} 10:00:00+00")
        for v in range(visitors):
            log(db, "snippet", sid, "view", session_id=f"v{v}")  # the same sessions on every day
            log(db, "snippet", sid, "copy", session_id=f"v{v}")  # not a view: not in trending viewers
        db.execute("SELECT tally.rollup()")
        expected[day] = scalar(db, "SELECT viewers FROM tally.trending('snippet', '7d', 5)")
    assert expected == {"2026-11-10": 3, "2026-11-15": 5, "2026-11-20": 6}
    assert scalar(db, "SELECT viewers FROM tally.trending('snippet', '30d', 5)") == 9
    clock(db, "2026-11-23 10:00:00+00")  # 11-15 leaves the 7-day window
    db.execute("SELECT tally.rollup()")
    assert scalar(db, "SELECT viewers FROM tally.trending('snippet', '7d', 5)") == 4
    db.execute("SELECT tally.rebuild_trending()")
    assert scalar(db, "SELECT viewers FROM tally.trending('snippet', '7d', 5)") == 4
    assert scalar(db, "SELECT viewers FROM tally.trending('snippet', '30d', 5)") == 9


def test_a_visitor_returning_later_that_day_is_not_a_new_viewer_even_after_housekeeping(db, targets, clock):
    sid = targets()
    steps = [("2026-11-20 01:00:00", "logged"), ("2026-11-20 05:00:00", "logged"), ("2026-11-20 23:59:00", "logged"),
             ("2026-11-21 00:20:00", "debounced"), ("2026-11-21 09:00:00", "logged")]
    for at, expected in steps:
        clock(db, at + "+00")
        db.execute("SELECT tally.housekeeping()")  # prunes only what can no longer decide anything
        assert log(db, "snippet", sid, "view", ip="203.0.113.9", user_agent="Firefox") == expected, at
        db.execute("SELECT tally.rollup()")
    rows = db.execute("SELECT day::text, count, viewers FROM tally.daily_counts ORDER BY day").fetchall()
    assert rows == [("2026-11-20", 3, 1), ("2026-11-21", 1, 1)]


def test_housekeeping_keeps_todays_debounce_slots_and_drops_past_days(db, targets, clock):
    sid = targets()
    clock(db, "2026-11-20 01:00:00+00")
    log(db, "snippet", sid, "view", session_id="s")
    clock(db, "2026-11-20 12:00:00+00")
    assert scalar(db, "SELECT tally.housekeeping()")["debounce"] == 0
    clock(db, "2026-11-21 12:00:00+00")
    assert scalar(db, "SELECT tally.housekeeping()")["debounce"] == 1
