"""tally.forget_user(): erasure of one user's personal data, with every count unchanged."""

import threading

import pytest
from psycopg import errors

from tests.conftest import ADMIN_LOGIN, APP_LOGIN, limit, log, scalar, wait_until_blocked

COUNTS = """
    SELECT (SELECT json_agg(s ORDER BY s.id) FROM (SELECT id, views, copies FROM tally.snippets) AS s),
           (SELECT json_agg(d ORDER BY d.day, d.target_id, d.kind) FROM tally.daily_counts AS d),
           (SELECT json_agg(t) FROM tally.trending('snippet', '7d', 10) AS t)
"""


def test_forget_user_anonymises_events_and_changes_no_count(db, targets, clock):
    first, second = targets(), targets()
    clock(db, "2026-11-20 10:00:00+00")
    for sid in (first, second):
        log(db, "snippet", sid, "view", user_id="alice", ip="203.0.113.5", user_agent="A", referrer="https://x/?q=alice",
            metadata='{"email": "alice@example.com"}')
        log(db, "snippet", sid, "copy", user_id="alice")
        log(db, "snippet", sid, "view", user_id="bob")
    db.execute("SELECT tally.rollup()")
    clock(db, "2026-11-20 10:05:00+00")
    log(db, "snippet", first, "copy", user_id="alice", ip="203.0.113.5")  # not rolled up at the erasure
    log(db, "snippet", second, "copy", session_id="carol")
    # What the next rollup would show without the erasure (then undone).
    db.execute("BEGIN")
    db.execute("SELECT tally.rollup()")
    expected = db.execute(COUNTS).fetchone()
    db.execute("ROLLBACK")

    result = scalar(db, "SELECT tally.forget_user('alice')")
    assert result == {"events": 5, "debounce": 2, "rate_limit_state": 3,
                      "rate_limit_rejections": 0}  # rate limits: per kind and window
    db.execute("SELECT tally.rollup()")
    assert db.execute(COUNTS).fetchone() == expected
    assert scalar(db, "SELECT count(*) FROM tally.events WHERE user_id = 'alice'") == 0
    assert scalar(db, """
        SELECT count(*) FROM tally.events
        WHERE user_id IS NULL AND (ip IS NOT NULL OR user_agent_id IS NOT NULL OR referrer IS NOT NULL
                                   OR metadata IS NOT NULL)
    """) == 0
    assert scalar(db, "SELECT count(*) FROM tally.events WHERE user_id = 'bob'") == 2


def test_forget_user_keeps_the_days_unique_viewers(db, targets, clock):
    sid = targets()
    clock(db, "2026-11-20 10:00:00+00")
    log(db, "snippet", sid, "view", user_id="alice")
    db.execute("SELECT tally.rollup()")
    clock(db, "2026-11-20 11:00:00+00")
    log(db, "snippet", sid, "view", user_id="alice")  # the same viewer, not rolled up yet
    assert scalar(db, "SELECT tally.forget_user('alice')")["events"] == 2
    db.execute("SELECT tally.rollup()")
    assert db.execute("SELECT count, viewers FROM tally.daily_counts").fetchall() == [(2, 1)]


def test_a_forgotten_user_is_a_new_visitor_at_once(db, targets):
    sid = targets()
    assert log(db, "snippet", sid, "view", user_id="alice") == "logged"
    assert log(db, "snippet", sid, "view", user_id="alice") == "debounced"
    db.execute("SELECT tally.forget_user('alice')")
    assert log(db, "snippet", sid, "view", user_id="alice") == "logged"


def test_forget_user_clears_rate_limit_state_and_rejections(db, targets):
    sid = targets()
    limit(db, "copy", user_limit=1)
    assert [log(db, "snippet", sid, "copy", user_id="alice") for _ in range(3)] == ["logged"] + ["rate_limited"] * 2
    result = scalar(db, "SELECT tally.forget_user('alice')")
    assert result["rate_limit_state"] == 1 and result["rate_limit_rejections"] == 1
    assert scalar(db, "SELECT count(*) FROM tally.rate_limit_rejections WHERE key LIKE 'user:%'") == 0
    assert log(db, "snippet", sid, "copy", user_id="alice") == "logged"


def test_only_tally_admin_may_forget_users(db, connect):
    with pytest.raises(errors.InsufficientPrivilege):
        connect(APP_LOGIN).execute("SELECT tally.forget_user('alice')")
    assert scalar(connect(ADMIN_LOGIN), "SELECT tally.forget_user('alice')")["events"] == 0
    with pytest.raises(errors.InvalidParameterValue):
        db.execute("SELECT tally.forget_user(NULL)")


def test_forget_user_backs_off_from_rows_ingestion_holds_instead_of_deadlocking(db, targets, connect):
    # An application transaction holds alice's copy counter, and forget_user, which also deletes her
    # debounce slot, needs that counter; then the transaction claims the slot. Waiting with the slot
    # held, forget_user made a lock cycle, and the detector failed it (40P01). Now it gives the slot
    # back while it waits, and erases the counter once the transaction has committed.
    limit(db, "copy", user_limit=100)
    limit(db, "view", user_limit=100)
    seen, other = targets(), targets()
    log(db, "snippet", seen, "view", user_id="alice")
    log(db, "snippet", seen, "copy", user_id="alice")  # her copy counter exists: the transaction updates it
    app, admin = connect(), connect()
    app.execute("SET deadlock_timeout = '10s'")  # were there a cycle, admin's detector (1 s) would find it
    app.autocommit = False
    assert log(app, "snippet", other, "copy", user_id="alice") == "logged"
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(scalar(admin, "SELECT tally.forget_user('alice')")))
    thread.start()
    wait_until_blocked(db, admin.info.backend_pid)
    assert log(app, "snippet", seen, "view", user_id="alice") == "debounced"  # her slot, given back
    app.commit()
    thread.join(timeout=20)
    assert result and isinstance(result[0], dict) and result[0]["debounce"] == 1, result
    assert scalar(db, "SELECT count(*) FROM tally.rate_limit_state WHERE key IN "
                      "(SELECT tally.rate_limit_key('user:alice', kind) FROM tally.kinds)") == 0


def test_forget_user_refuses_with_55p03_and_changes_nothing_while_a_transaction_keeps_her_rows(db, targets, connect):
    limit(db, "copy", user_limit=100)
    sid = targets()
    log(db, "snippet", sid, "copy", user_id="alice")
    app = connect()
    app.autocommit = False
    log(app, "snippet", sid, "copy", user_id="alice")  # holds her copy counter to the end
    db.execute("SET statement_timeout = '30s'")  # waited for the transaction, before
    with pytest.raises(errors.LockNotAvailable) as raised:
        db.execute("SELECT tally.forget_user('alice')")
    assert raised.value.diag.message_hint == "call it again; nothing was changed"
    app.rollback()
    assert scalar(db, "SELECT count(*) FROM tally.events WHERE user_id = 'alice'") == 1
