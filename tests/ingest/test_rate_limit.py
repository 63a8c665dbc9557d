"""Rate limits per IP and per user, per kind and window: a status, never an exception."""

import threading

from tests.conftest import limit, log, scalar, wait_until_blocked


def test_calls_over_the_ip_limit_are_rate_limited_and_not_recorded(db, targets):
    sid = targets()
    limit(db, "download", ip_limit=3)
    outcomes = [log(db, "snippet", sid, "download", ip="203.0.113.5") for _ in range(5)]
    assert outcomes == ["logged"] * 3 + ["rate_limited"] * 2
    assert scalar(db, "SELECT count(*) FROM tally.events") == 3


def test_one_ip_over_its_limit_does_not_affect_another(db, targets):
    sid = targets()
    limit(db, "download", ip_limit=2)
    for _ in range(4):
        log(db, "snippet", sid, "download", ip="203.0.113.5")
    assert log(db, "snippet", sid, "download", ip="203.0.113.6") == "logged"


def test_limits_are_per_kind(db, targets):
    sid = targets()
    limit(db, "download", ip_limit=1)
    log(db, "snippet", sid, "download", ip="203.0.113.5")
    assert log(db, "snippet", sid, "download", ip="203.0.113.5") == "rate_limited"
    assert log(db, "snippet", sid, "copy", ip="203.0.113.5") == "logged"


def test_calls_over_the_user_limit_are_rate_limited(db, targets):
    sid = targets()
    limit(db, "copy", user_limit=2)
    outcomes = [log(db, "snippet", sid, "copy", user_id="u1", ip=f"203.0.113.{i}") for i in range(3)]
    assert outcomes == ["logged", "logged", "rate_limited"]
    assert log(db, "snippet", sid, "copy", user_id="u2") == "logged"


def test_defaults_are_stricter_for_copy_and_download_than_view(db):
    rows = dict(db.execute("SELECT kind, ip_limit FROM tally.kinds").fetchall())
    assert rows["copy"] < rows["view"] and rows["download"] < rows["view"]


def test_limit_resets_in_the_next_window(db, targets, clock):
    sid = targets()
    limit(db, "download", ip_limit=1)
    clock(db, "2026-11-20 10:00:10+00")
    assert log(db, "snippet", sid, "download", ip="203.0.113.5") == "logged"
    assert log(db, "snippet", sid, "download", ip="203.0.113.5") == "rate_limited"
    clock(db, "2026-11-20 10:01:00+00")
    assert log(db, "snippet", sid, "download", ip="203.0.113.5") == "logged"


def test_rejections_are_aggregated_in_the_rate_limit_log(db, targets, clock):
    sid = targets()
    limit(db, "download", ip_limit=1)
    clock(db, "2026-11-20 10:00:10+00")
    for _ in range(4):
        log(db, "snippet", sid, "download", ip="203.0.113.5")
    rows = db.execute("SELECT window_start::text, key, kind, rejected FROM tally.rate_limit_log").fetchall()
    assert rows == [("2026-11-20 10:00:00+00", "ip:203.0.113.5", "download", 3)]
    assert scalar(db, "SELECT count FROM tally.discard_log WHERE reason = 'rate_limited'") == 3


def test_rate_limited_call_does_not_abort_the_callers_transaction(db, targets):
    sid = targets()
    limit(db, "download", ip_limit=1)
    with db.transaction():
        log(db, "snippet", sid, "download", ip="203.0.113.5")
        assert log(db, "snippet", sid, "download", ip="203.0.113.5") == "rate_limited"
        assert scalar(db, "SELECT 1") == 1
    assert scalar(db, "SELECT count(*) FROM tally.events") == 1


def test_rate_limit_state_is_pruned_after_its_window(db, targets, clock):
    sid = targets()
    clock(db, "2026-11-20 10:00:10+00")
    for i in range(20):
        log(db, "snippet", sid, "download", ip=f"203.0.113.{i}")
    assert scalar(db, "SELECT count(*) FROM tally.rate_limit_state") == 20
    clock(db, "2026-11-20 10:03:00+00")
    db.execute("SELECT tally.housekeeping()")
    assert scalar(db, "SELECT count(*) FROM tally.rate_limit_state") == 0


def test_an_open_transaction_holds_up_only_the_calls_that_share_its_counters(db, targets, connect):
    # Exact limits: a call's counters stay locked until its transaction ends (README, "Call it in a short
    # transaction"). Calls from another address and user go on; one from the same address waits, then counts.
    sid = targets()
    holder, other, same = connect(), connect(), connect()
    holder.execute("BEGIN")
    assert log(holder, "snippet", sid, "view", session_id="a", ip="198.51.100.7") == "logged"
    other.execute("SET statement_timeout = '2s'")
    assert log(other, "snippet", sid, "view", session_id="b", ip="198.51.100.8") == "logged"
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(
        log(same, "snippet", sid, "view", session_id="c", ip="198.51.100.7")))
    thread.start()
    wait_until_blocked(db, same.info.backend_pid)
    holder.execute("COMMIT")
    thread.join(10)
    assert outcome == ["logged"]
    assert scalar(db, "SELECT hits FROM tally.rate_limit_state WHERE key = tally.rate_limit_key('ip:198.51.100.7', "
                      "'view')") == 2
