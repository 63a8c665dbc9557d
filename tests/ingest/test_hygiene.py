"""Truncation and cleaning of what callers send: bounded, control-free, never rejected with the event."""

import json

import psycopg
import pytest

from tests.conftest import log, scalar


def stored(db, column):
    return scalar(db, f"SELECT {column} FROM tally.event_log")


def test_user_agent_is_cut_to_512_characters(db, targets):
    log(db, "snippet", targets(), "copy", user_agent="é" * 2000)
    assert stored(db, "length(user_agent)") == 512


def test_referrer_is_cut_to_1024_characters(db, targets):
    log(db, "snippet", targets(), "copy", referrer="https://example.com/" + "a" * 5000)
    assert stored(db, "length(referrer)") == 1024


def test_bounds_come_from_settings(db, targets):
    db.execute("UPDATE tally.settings SET user_agent_max = 10, referrer_max = 5")
    log(db, "snippet", targets(), "copy", user_agent="Mozilla/5.0 long", referrer="https://x")
    assert db.execute("SELECT user_agent, referrer FROM tally.event_log").fetchone() == ("Mozilla/5.", "https")


def test_control_characters_are_removed(db, targets):
    log(db, "snippet", targets(), "copy", user_agent="Moz\x01il\x1fla\x7f/5\r\n.0\t", referrer="https://e\x08x.com")
    assert db.execute("SELECT user_agent, referrer FROM tally.event_log").fetchone() == ("Mozilla/5.0", "https://ex.com")


def test_nul_bytes_cannot_reach_the_server_and_change_nothing(db, targets):
    sid = targets()
    with pytest.raises(psycopg.DataError):
        log(db, "snippet", sid, "copy", user_agent="Mozilla\x00/5.0")
    assert scalar(db, "SELECT count(*) FROM tally.events") == 0
    assert scalar(db, "SELECT count(*) FROM tally.rate_limit_state") == 0


def test_nul_escape_in_metadata_is_refused_with_22p05(db, targets):
    with pytest.raises(psycopg.errors.UntranslatableCharacter):
        log(db, "snippet", targets(), "copy", metadata='{"a": "\\u0000"}')
    assert scalar(db, "SELECT count(*) FROM tally.events") == 0


def test_oversized_metadata_is_replaced_by_a_marker_and_the_event_kept(db, targets):
    big = json.dumps({"blob": "x" * 10_000})
    assert log(db, "snippet", targets(), "copy", metadata=big) == "logged"
    marker = stored(db, "metadata")
    assert marker["_tally"] == "metadata_dropped" and marker["reason"] == "too_large"
    assert marker["bytes"] > 4096


def test_metadata_that_is_not_an_object_is_replaced_by_a_marker(db, targets):
    assert log(db, "snippet", targets(), "copy", metadata="[1, 2, 3]") == "logged"
    assert stored(db, "metadata") == {"_tally": "metadata_dropped", "reason": "not_an_object"}


def test_small_metadata_object_is_kept(db, targets):
    log(db, "snippet", targets(), "copy", metadata='{"button": "hero"}')
    assert stored(db, "metadata") == {"button": "hero"}


@pytest.mark.parametrize(("given", "expected"), [
    ("203.0.113.9", "203.0.113.9"),
    ("2001:db8::1", "2001:db8::1"),
    ("not-an-ip", None),
    ("999.1.1.1", None),
    ("1" * 5000, None),
    ("", None),
])
def test_unparsable_ip_is_stored_as_null(db, targets, given, expected):
    assert log(db, "snippet", targets(), "copy", ip=given) == "logged"
    assert stored(db, "host(ip)") == expected
