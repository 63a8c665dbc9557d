"""Raw addresses and user agents live only for settings.pii_retention (the abuse window)."""

from tests.conftest import limit, log, scalar


def _events(db):
    return db.execute("""
        SELECT host(e.ip), u.user_agent FROM tally.events AS e
        LEFT JOIN tally.user_agents AS u ON u.id = e.user_agent_id ORDER BY e.id
    """).fetchall()


def test_housekeeping_clears_addresses_and_user_agents_after_the_abuse_window(db, targets, clock):
    sid = targets()
    clock(db, "2026-11-01 12:00:00+00")
    log(db, "snippet", sid, "copy", ip="203.0.113.1", user_agent="Old agent")
    clock(db, "2026-11-06 12:00:00+00")
    log(db, "snippet", sid, "copy", ip="203.0.113.2", user_agent="Young agent")
    db.execute("SELECT tally.rollup()")
    clock(db, "2026-11-09 00:00:00+00")  # the first event is 7.5 days old, the second 2.5
    result = scalar(db, "SELECT tally.housekeeping()")["personal_data"]
    assert result["events_cleared"] == 1 and result["user_agents_unreferenced"] == 1
    assert _events(db) == [(None, None), ("203.0.113.2", "Young agent")]
    assert scalar(db, "SELECT count(*) FROM tally.user_agents WHERE user_agent = 'Old agent'") == 0
    # Counting is untouched, and the abuse tools still see the young address.
    assert scalar(db, "SELECT copies FROM tally.snippets WHERE id = %s", [sid]) == 2
    assert [r[0] for r in db.execute("SELECT host(ip) FROM tally.high_volume_ips('30 days', 1)")] == ["203.0.113.2"]


def test_each_run_reads_only_what_crossed_the_cutoff_since_the_last(db, targets, clock):
    sid = targets()
    clock(db, "2026-11-01 12:00:00+00")
    log(db, "snippet", sid, "copy", ip="203.0.113.1", user_agent="A")
    clock(db, "2026-11-09 00:00:00+00")
    assert scalar(db, "SELECT tally.housekeeping()")["personal_data"]["events_cleared"] == 1
    # A row that somehow kept its address below the mark is not looked at again: the mark moved on.
    db.execute("UPDATE tally.events SET ip = '203.0.113.1'")
    clock(db, "2026-11-09 06:00:00+00")
    assert scalar(db, "SELECT tally.housekeeping()")["personal_data"]["events_cleared"] == 0
    assert str(scalar(db, "SELECT cleared_below FROM tally.pii_state")) == "2026-11-02 06:00:00+00:00"


def test_rejection_keys_keep_only_a_prefix_after_the_abuse_window(db, targets, clock):
    sid = targets()
    limit(db, "copy", ip_limit=1, user_limit=1)
    clock(db, "2026-11-01 12:00:00+00")
    for ip in ("203.0.113.7", "203.0.113.7", "203.0.113.8", "203.0.113.8", "2001:db8:1:2::1", "2001:db8:1:2::2"):
        log(db, "snippet", sid, "copy", ip=ip)
    for _ in range(3):
        log(db, "snippet", sid, "copy", user_id="alice")
    clock(db, "2026-11-01 12:30:00+00")
    log(db, "snippet", sid, "copy", ip="unknown")
    log(db, "snippet", sid, "copy", ip="unknown")
    before = scalar(db, "SELECT sum(rejected) FROM tally.rate_limit_rejections")
    clock(db, "2026-11-09 00:00:00+00")
    db.execute("SELECT tally.housekeeping()")
    rows = db.execute("SELECT key, sum(rejected) FROM tally.rate_limit_rejections GROUP BY key ORDER BY key").fetchall()
    assert rows == [("ip:2001:db8:1::/48", 1), ("ip:203.0.113.0/24", 2), ("ip:unparsable", 1), ("user:*", 2)]
    assert scalar(db, "SELECT sum(rejected) FROM tally.rate_limit_rejections") == before


def test_pii_retention_is_a_setting(db, targets, clock):
    sid = targets()
    db.execute("UPDATE tally.settings SET pii_retention = '1 day'")
    clock(db, "2026-11-01 12:00:00+00")
    log(db, "snippet", sid, "copy", ip="203.0.113.1", user_agent="A")
    clock(db, "2026-11-02 13:00:00+00")
    db.execute("SELECT tally.housekeeping()")
    assert _events(db) == [(None, None)]
