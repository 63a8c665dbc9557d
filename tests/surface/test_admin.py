"""Admin surface: rate-limit log, discard log and high-volume IPs."""

from tests.conftest import log


def test_high_volume_ips_lists_busy_addresses_with_rejections(db, targets):
    sid = targets()
    db.execute("UPDATE tally.kinds SET ip_limit = 5 WHERE kind = 'download'")
    for _ in range(12):
        log(db, "snippet", sid, "download", ip="198.51.100.66")
    for _ in range(2):
        log(db, "snippet", sid, "download", ip="203.0.113.1")
    rows = db.execute("SELECT host(ip), events, rejected, targets FROM tally.high_volume_ips('1 hour', 10)").fetchall()
    assert rows == [("198.51.100.66", 5, 7, 1)]


def test_high_volume_ips_respects_the_time_window(db, targets, clock):
    sid = targets()
    clock(db, "2026-11-20 10:00+00")
    for i in range(5):
        log(db, "snippet", sid, "copy", ip="198.51.100.66", session_id=str(i))
    clock(db, "2026-11-25 10:00+00")
    assert db.execute("SELECT * FROM tally.high_volume_ips('1 day', 1)").fetchall() == []
    assert len(db.execute("SELECT * FROM tally.high_volume_ips('7 days', 1)").fetchall()) == 1


def test_discard_log_sums_the_shards(db, connect, targets):
    sid = targets(visibility="private", owner_id="alice")
    conns = [connect() for _ in range(4)]
    for conn in conns:
        log(conn, "snippet", sid, "view", user_id="mallory")
    assert db.execute("SELECT reason::text, count FROM tally.discard_log").fetchall() == [("discarded_not_visible", 4)]
