"""Views debounce per viewer per target per window, exactly, under concurrency."""

from tests.conftest import crossed, limit, log, run_together, scalar


def test_concurrent_views_count_once(db, targets, connect):
    sid = targets()
    conns = [connect() for _ in range(16)]
    outcomes = run_together(16, lambda i: log(conns[i], "snippet", sid, "view", session_id="same-viewer"))
    assert sorted(outcomes) == ["debounced"] * 15 + ["logged"]
    assert scalar(db, "SELECT count(*) FROM tally.events") == 1
    assert scalar(db, "SELECT count FROM tally.discard_log WHERE reason = 'debounced'") == 15


def test_concurrent_distinct_viewers_all_count(db, targets, connect):
    sid = targets()
    conns = [connect() for _ in range(16)]
    outcomes = run_together(16, lambda i: log(conns[i], "snippet", sid, "view", session_id=f"viewer-{i}"))
    assert outcomes == ["logged"] * 16
    assert scalar(db, "SELECT count(*) FROM tally.events") == 16


def test_view_counts_again_once_the_window_has_passed(db, targets, clock):
    sid = targets()
    clock(db, "2026-11-20 10:00:00+00")
    assert log(db, "snippet", sid, "view", user_id="u") == "logged"
    clock(db, "2026-11-20 10:29:59+00")
    assert log(db, "snippet", sid, "view", user_id="u") == "debounced"
    clock(db, "2026-11-20 10:30:00+00")
    assert log(db, "snippet", sid, "view", user_id="u") == "logged"
    assert scalar(db, "SELECT count(*) FROM tally.events") == 2


def test_debounced_views_do_not_extend_the_window(db, targets, clock):
    sid = targets()
    for at, expected in (("10:00", "logged"), ("10:20", "debounced"), ("10:40", "logged")):
        clock(db, f"2026-11-20 {at}:00+00")
        assert log(db, "snippet", sid, "view", session_id="s") == expected


def test_viewer_is_user_then_session_then_ip_and_agent(db, targets):
    sid = targets()
    assert log(db, "snippet", sid, "view", user_id="u1", session_id="a") == "logged"
    assert log(db, "snippet", sid, "view", user_id="u1", session_id="b") == "debounced"
    assert log(db, "snippet", sid, "view", session_id="a") == "logged"
    assert log(db, "snippet", sid, "view", session_id="a", ip="203.0.113.1") == "debounced"
    assert log(db, "snippet", sid, "view", ip="203.0.113.1", user_agent="A") == "logged"
    assert log(db, "snippet", sid, "view", ip="203.0.113.1", user_agent="A") == "debounced"
    assert log(db, "snippet", sid, "view", ip="203.0.113.1", user_agent="B") == "logged"


def test_debounce_is_per_target(db, targets):
    first, second = targets(), targets()
    assert log(db, "snippet", first, "view", session_id="s") == "logged"
    assert log(db, "snippet", second, "view", session_id="s") == "logged"


def test_copies_are_not_debounced_by_default(db, targets):
    sid = targets()
    assert [log(db, "snippet", sid, "copy", session_id="s") for _ in range(3)] == ["logged"] * 3


def test_debounce_window_is_configurable_per_kind(db, targets):
    sid = targets()
    db.execute("UPDATE tally.kinds SET debounce = '1 hour' WHERE kind = 'download'")
    assert log(db, "snippet", sid, "download", session_id="s") == "logged"
    assert log(db, "snippet", sid, "download", session_id="s") == "debounced"


def test_anonymous_call_without_any_viewer_identity_is_not_debounced(db, targets):
    sid = targets()
    assert [log(db, "snippet", sid, "view") for _ in range(2)] == ["logged", "logged"]


def test_discarded_views_do_not_claim_the_debounce_slot(db, targets):
    sid = targets(visibility="private", owner_id="alice")
    assert log(db, "snippet", sid, "view", user_id="bob") == "discarded_not_visible"
    assert scalar(db, "SELECT count(*) FROM tally.debounce") == 0


def test_expired_debounce_state_is_pruned(db, targets, clock):
    for i in range(50):
        clock(db, "2026-11-20 10:00:00+00")
        log(db, "snippet", targets(), "view", session_id=f"s{i}")
    clock(db, "2026-11-20 23:50:00+00")
    log(db, "snippet", targets(), "view", session_id="recent")
    assert scalar(db, "SELECT count(*) FROM tally.debounce") == 51
    # Slots of a past day go once their window has passed; the last one still decides the next minutes.
    clock(db, "2026-11-21 00:10:00+00")
    assert scalar(db, "SELECT (tally.housekeeping() ->> 'debounce')::int") == 50
    assert scalar(db, "SELECT count(*) FROM tally.debounce") == 1


def test_opposite_debounce_claims_in_two_transactions_never_raise(db, targets, connect):
    # Two open transactions log views of sessions A, B and B, A (no rate limit, so the only rows they
    # wait on are the debounce slots, claimed in the statement that stores the row). The deadlock
    # detector breaks the cycle; log_event catches it and returns debounced, with nothing stored.
    sid = targets()
    limit(db, "view")
    sessions = ["A", "B"]
    results = crossed(
        connect,
        lambda conn, i: log(conn, "snippet", sid, "view", session_id=sessions[i]),
        lambda conn, i: log(conn, "snippet", sid, "view", session_id=sessions[1 - i]),
    )
    # The survivor's claim then finds the victim's slot committed inside its window: debounced as well.
    assert results == {0: "debounced", 1: "debounced"}
    assert scalar(db, "SELECT count(*) FROM tally.events") == 2
    assert scalar(db, "SELECT sum(count) FROM tally.discard_log WHERE reason = 'debounced'") == 2
    assert scalar(db, "SELECT current_setting('tally.voucher', true)") in ("", None)
