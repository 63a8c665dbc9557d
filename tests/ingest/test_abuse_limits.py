"""Abuse limits that do not fail open: one identity per address whatever its spelling, IPv6 grouped by
prefix, garbage addresses in one shared bucket, no side state for refused calls, and no lock cycle
that makes log_event raise."""


import pytest

from tests.conftest import crossed, limit, log, scalar


def test_addresses_of_one_ipv6_64_share_one_rate_limit(db, targets):
    sid = targets()
    limit(db, "download", ip_limit=10)
    outcomes = [log(db, "snippet", sid, "download", ip=f"2001:db8:1:2::{i:x}") for i in range(1, 51)]
    assert outcomes.count("logged") == 10
    assert log(db, "snippet", sid, "download", ip="2001:db8:1:3::1") == "logged"  # the next /64 is another host


def test_addresses_of_one_ipv6_64_are_one_device_for_debounce(db, targets):
    sid = targets()
    outcomes = [log(db, "snippet", sid, "view", ip=f"2001:db8::{i:x}", user_agent="Moz/5") for i in range(1, 21)]
    assert outcomes == ["logged"] + ["debounced"] * 19


def test_the_ipv6_prefix_is_a_setting(db, targets):
    sid = targets()
    db.execute("UPDATE tally.settings SET ipv6_prefix = 128")
    limit(db, "download", ip_limit=1)
    outcomes = [log(db, "snippet", sid, "download", ip=f"2001:db8::{i:x}") for i in range(1, 6)]
    assert outcomes == ["logged"] * 5


@pytest.mark.parametrize("spelling", ["::ffff:198.51.100.7", "198.51.100.7/31", "198.51.100.7/8",
                                      "::FFFF:198.51.100.7"])
def test_every_spelling_of_an_ipv4_address_is_that_address(db, targets, spelling):
    sid = targets()
    limit(db, "download", ip_limit=1)
    assert log(db, "snippet", sid, "download", ip="198.51.100.7") == "logged"
    assert log(db, "snippet", sid, "download", ip=spelling) == "rate_limited"
    assert log(db, "snippet", targets(), "view", ip=spelling, user_agent="Moz/5") == "logged"
    assert db.execute("SELECT DISTINCT host(ip), masklen(ip) FROM tally.events").fetchall() == [("198.51.100.7", 32)]


@pytest.mark.parametrize("garbage", ["203.0.113.5, 10.0.0.1", "unknown", "", "1.2.3.4.5", "::g"])
def test_unparsable_addresses_share_one_bucket_and_fail_closed(db, targets, garbage):
    sid = targets()
    limit(db, "download", ip_limit=20)
    outcomes = [log(db, "snippet", sid, "download", ip=f"{garbage}{' ' * (i % 2)}") for i in range(100)]
    assert outcomes.count("logged") == 20
    assert scalar(db, "SELECT count(*) FROM tally.events WHERE ip IS NOT NULL") == 0
    assert scalar(db, "SELECT array_agg(DISTINCT key) FROM tally.rate_limit_log") == ["ip:unparsable"]


def test_unparsable_address_without_session_is_still_debounced(db, targets):
    sid = targets()
    outcomes = [log(db, "snippet", sid, "view", ip=f"garbage-{i}", user_agent="Moz/5") for i in range(10)]
    assert outcomes == ["logged"] + ["debounced"] * 9


def test_refused_hostile_calls_leave_no_side_state(db, targets, clock):
    sid = targets()
    clock(db, "2026-11-20 10:00:00+00")  # one rate-limit window for all 10,000 calls
    limit(db, "download", ip_limit=1)
    log(db, "snippet", sid, "download", ip="203.0.113.5")
    db.execute("CREATE TEMPORARY TABLE calls (outcome text)")
    before = db.execute("SELECT (SELECT count(*) FROM tally.user_agents), (SELECT count(*) FROM tally.event_ids),"
                        " (SELECT count(*) FROM tally.rate_limit_state), pg_total_relation_size('tally.user_agents')"
                        ).fetchone()
    # 10,000 calls, each its own transaction as an application's are, in 100 round trips.
    for batch in range(100):
        db.execute("""
            INSERT INTO calls SELECT tally.log_event('snippet', %s, 'download', ip => '203.0.113.5',
                user_agent => 'Hostile/' || g, event_id => gen_random_uuid())::text
            FROM generate_series(%s::int, %s::int) AS g""", [sid, batch * 100, batch * 100 + 99])
    outcomes = dict(db.execute("SELECT outcome, count(*) FROM calls GROUP BY outcome").fetchall())
    assert outcomes == {"rate_limited": 10000}
    after = db.execute("SELECT (SELECT count(*) FROM tally.user_agents), (SELECT count(*) FROM tally.event_ids),"
                       " (SELECT count(*) FROM tally.rate_limit_state), pg_total_relation_size('tally.user_agents')"
                       ).fetchone()
    assert after == before  # per 10,000 hostile calls: no rows, no bytes


def test_bots_and_duplicates_store_no_user_agent_either(db, targets):
    sid = targets()
    event = "6f1c1d43-5a8e-4f3e-9d43-bb0a2f3c1d01"
    log(db, "snippet", sid, "copy", event_id=event)
    assert log(db, "snippet", sid, "copy", event_id=event, user_agent="Fresh/1") == "duplicate"
    assert log(db, "snippet", sid, "copy", user_agent="FreshBot/1.0 (+crawl)") == "discarded_bot"
    assert scalar(db, "SELECT count(*) FROM tally.user_agents") == 0


def test_user_agents_are_bounded_even_when_events_are_kept_forever(db, targets, clock):
    sid = targets()
    db.execute("UPDATE tally.settings SET event_retention = NULL, user_agent_ttl = '30 days'")
    clock(db, "2026-09-01 10:00:00+00")
    log(db, "snippet", sid, "copy", user_agent="Old/1.0")
    clock(db, "2026-11-20 10:00:00+00")
    log(db, "snippet", sid, "copy", user_agent="New/1.0")
    assert scalar(db, "SELECT (tally.housekeeping() ->> 'user_agents')::int") == 1
    assert [r[0] for r in db.execute("SELECT user_agent FROM tally.user_agents")] == ["New/1.0"]


def test_discard_counters_of_past_days_are_folded_into_one_row(db, targets, clock, connect):
    sid = targets()
    limit(db, "download", ip_limit=1)
    clock(db, "2026-11-19 10:00:00+00")
    for conn in (db, connect(), connect()):
        clock(conn, "2026-11-19 10:00:00+00")
        log(conn, "snippet", sid, "download", ip="203.0.113.5")
        log(conn, "snippet", sid, "download", ip="203.0.113.5")
    assert scalar(db, "SELECT count(*) FROM tally.discards") == 3  # one row per backend: no shared lock
    clock(db, "2026-11-20 10:00:00+00")
    db.execute("SELECT tally.housekeeping()")
    assert scalar(db, "SELECT count(*) FROM tally.discards") == 3  # yesterday's: a call may still count there
    clock(db, "2026-11-21 10:00:00+00")
    db.execute("SELECT tally.housekeeping()")
    assert db.execute("SELECT shard, count FROM tally.discards").fetchall() == [(0, 5)]
    assert db.execute("SELECT count FROM tally.discard_log").fetchall() == [(5,)]


def test_a_call_begun_before_midnight_never_waits_for_housekeeping_to_count_a_discard(db, targets, clock, connect):
    # Its backend's discard row of yesterday exists; housekeeping, after midnight, folded past days' rows
    # into one, holding them until it committed, and the call's next discard waited for it (or failed in
    # a lock cycle with it: 40P01 from log_event, outside its own deadlock handling).
    sid = targets()
    app, keeper = connect(), connect()
    clock(app, "2026-11-19 23:59:00+00")  # the clock of a transaction begun then
    assert log(app, "snippet", sid, "view", user_agent="Googlebot/2.1") == "discarded_bot"  # its row of the 19th
    keeper.execute("BEGIN")
    clock(keeper, "2026-11-20 00:01:00+00")
    keeper.execute("SELECT tally.housekeeping()")  # left open
    app.execute("SET statement_timeout = '5s'")
    assert log(app, "snippet", sid, "view", user_agent="Googlebot/2.1") == "discarded_bot"
    keeper.execute("COMMIT")
    assert scalar(db, "SELECT sum(count) FROM tally.discard_log WHERE reason = 'discarded_bot'") == 2


def test_opposite_lock_orders_in_two_transactions_never_raise(db, targets, connect):
    # Two open transactions log downloads for addresses A, B and B, A: each holds the rate-limit row
    # of its first address and waits for the other's. The deadlock detector breaks the cycle;
    # log_event catches it and returns rate_limited (fail closed) instead of raising 40P01.
    sid = targets()
    limit(db, "download", ip_limit=100)
    addresses = ["203.0.113.1", "203.0.113.2"]
    results = crossed(
        connect,
        lambda conn, i: log(conn, "snippet", sid, "download", ip=addresses[i]),
        lambda conn, i: log(conn, "snippet", sid, "download", ip=addresses[1 - i]),
    )
    assert sorted(results.values()) == ["logged", "rate_limited"]
    assert scalar(db, "SELECT count(*) FROM tally.events") == 3
    assert scalar(db, "SELECT sum(count) FROM tally.discard_log WHERE reason = 'rate_limited'") == 1
