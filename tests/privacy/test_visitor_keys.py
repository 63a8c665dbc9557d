"""Visitor keys are HMACs under a daily salt; debounce holds across midnight; old salts are deleted."""

import hashlib
import hmac
import uuid

from tests.conftest import log, run_together, scalar


def _expected_key(db, day: str, identity: str) -> uuid.UUID:
    inner = bytes(scalar(db, "SELECT inner_pad FROM tally.visitor_salts WHERE day = %s", [day]))
    key = bytes(b ^ 0x36 for b in inner)  # the salt, recovered from its inner pad
    return uuid.UUID(bytes=hmac.new(key, identity.encode(), hashlib.sha256).digest()[:16])


def test_visitor_key_is_an_hmac_sha256_of_the_identity_under_the_days_salt(db, targets, clock):
    sid = targets()
    clock(db, "2026-11-20 10:00:00+00")
    log(db, "snippet", sid, "copy", ip="203.0.113.9", user_agent="Firefox")
    log(db, "snippet", sid, "copy", user_id="u1")
    log(db, "snippet", sid, "copy", session_id="s1")
    stored = [r[0] for r in db.execute("SELECT visitor FROM tally.events ORDER BY id")]
    identities = ["(device,203.0.113.9,Firefox)", "(user,u1)", "(session,s1)"]
    assert stored == [_expected_key(db, "2026-11-20", i) for i in identities]
    # Not the unkeyed md5 of earlier releases, which anyone can recompute from an address.
    assert stored[0] != uuid.UUID(hashlib.md5(identities[0].encode()).hexdigest())
    assert scalar(db, "SELECT count(*) FROM tally.events WHERE previous_visitor IS NOT NULL") == 0


def test_the_same_visitor_gets_another_key_on_another_day(db, targets, clock):
    sid = targets()
    for day in ("2026-11-20", "2026-11-21"):
        clock(db, f"{day} 12:00:00+00")
        assert log(db, "snippet", sid, "view", user_id="u1") == "logged"
    keys = [r[0] for r in db.execute("SELECT visitor FROM tally.events ORDER BY id")]
    assert len(set(keys)) == 2
    assert keys[1] == _expected_key(db, "2026-11-21", "(user,u1)")


def test_debounce_window_spans_midnight_although_keys_rotate(db, targets, clock):
    sid = targets()
    steps = [("2026-11-20 23:50:00", "logged"), ("2026-11-21 00:10:00", "debounced"),
             ("2026-11-21 00:19:59", "debounced"), ("2026-11-21 00:20:00", "logged"),
             ("2026-11-21 00:40:00", "debounced"), ("2026-11-21 00:50:00", "logged")]
    for at, expected in steps:
        clock(db, at + "+00")
        assert log(db, "snippet", sid, "view", ip="203.0.113.9", user_agent="Firefox") == expected, at


def test_calls_either_side_of_midnight_admit_exactly_one(db, targets, clock, connect):
    sid = targets()
    clock(db, "2026-11-20 08:00:00+00")
    log(db, "snippet", sid, "copy", session_id="warm-up")  # the day's first call creates the salts
    for round_ in range(5):
        conns = [connect() for _ in range(8)]
        for i, conn in enumerate(conns):
            clock(conn, "2026-11-20 23:59:59+00" if i % 2 else "2026-11-21 00:00:01+00")
        outcomes = run_together(
            8, lambda i, conns=conns, session=f"r{round_}": log(conns[i], "snippet", sid, "view", session_id=session))
        assert sorted(outcomes) == ["debounced"] * 7 + ["logged"], round_


def _salt_days(db, since: str) -> list[str]:
    return [str(r[0]) for r in db.execute("SELECT day FROM tally.visitor_salts WHERE day >= %s ORDER BY day", [since])]


def test_salts_are_made_ahead_and_those_older_than_yesterday_deleted(db, clock):
    clock(db, "2027-03-01 10:00:00+00")
    assert scalar(db, "SELECT tally.prepare_salts()") == 3
    assert _salt_days(db, "2027-01-01") == ["2027-03-01", "2027-03-02", "2027-03-03"]
    clock(db, "2027-03-03 00:00:00+00")
    result = scalar(db, "SELECT tally.housekeeping()")
    assert result["visitor_salts_created"] == 2
    assert _salt_days(db, "2000-01-01") == ["2027-03-02", "2027-03-03", "2027-03-04", "2027-03-05"]
    assert scalar(db, "SELECT tally.prepare_salts()") == 0


def test_a_rollup_makes_the_salts_of_the_next_days(db, clock):
    clock(db, "2027-03-01 10:00:00+00")
    db.execute("SELECT tally.rollup()")
    assert _salt_days(db, "2027-01-01") == ["2027-03-01", "2027-03-02", "2027-03-03"]


def test_a_call_on_a_day_without_salt_creates_it_once_under_concurrency(db, targets, clock, connect):
    sid = targets()
    conns = [connect() for _ in range(8)]
    for conn in conns:
        clock(conn, "2027-06-01 10:00:00+00")
    outcomes = run_together(8, lambda i: log(conns[i], "snippet", sid, "copy", session_id=f"s{i}"))
    assert outcomes == ["logged"] * 8
    assert _salt_days(db, "2027-01-01") == ["2027-06-01"]
    assert scalar(db, "SELECT count(DISTINCT inner_pad) FROM tally.visitor_salts") == scalar(
        db, "SELECT count(*) FROM tally.visitor_salts")
