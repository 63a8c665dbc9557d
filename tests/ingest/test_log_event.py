"""log_event: outcomes, validation by trigger, caller errors and the unqualified entry point."""

import uuid

import psycopg
import pytest
from psycopg import errors

from tests.conftest import APP_LOGIN, limit, log, scalar


def test_logged_event_is_stored_once(db, targets):
    sid = targets()
    assert log(db, "snippet", sid, "view", session_id="s1", ip="203.0.113.9", user_agent="Mozilla/5.0") == "logged"
    row = db.execute("SELECT target_type, target_id, kind, host(ip), user_agent FROM tally.event_log").fetchall()
    assert row == [("snippet", sid, "view", "203.0.113.9", "Mozilla/5.0")]


def test_unqualified_call_works_for_a_member_of_tally_app(db, targets, connect):
    sid = targets()
    app = connect(APP_LOGIN)
    assert scalar(app, "SHOW search_path") == '"$user", public'
    outcome = scalar(app, "SELECT log_event(target_type => 'snippet', target_id => %s, kind => 'view', "
                          "user_id => NULL, session_id => 's1', ip => '203.0.113.9', user_agent => 'UA', "
                          "referrer => 'https://example.com/', metadata => '{}')::text", [sid])
    assert outcome == "logged"
    assert scalar(db, "SELECT count(*) FROM tally.events") == 1


def test_qualified_call_works_for_a_member_of_tally_app(targets, connect):
    sid = targets()
    app = connect(APP_LOGIN)
    assert log(app, "snippet", sid, "copy") == "logged"


@pytest.mark.parametrize(("target_type", "kind"), [("snippet", "like"), ("widget", "view"), ("snippet", None)])
def test_unknown_kind_or_target_type_raises_22023(db, target_type, kind):
    with pytest.raises(errors.InvalidParameterValue):
        log(db, target_type, "x", kind)
    assert scalar(db, "SELECT count(*) FROM tally.discards") == 0


def test_null_target_id_raises_22023(db):
    with pytest.raises(errors.InvalidParameterValue):
        db.execute("SELECT tally.log_event('snippet', NULL, 'view')")


@pytest.mark.parametrize("field", ["target_id", "user_id", "session_id"])
def test_overlong_identifier_raises_22001(db, targets, field):
    sid = targets()
    kwargs = {"user_id": None, "session_id": None, field: "x" * 257}
    target_id = kwargs.pop("target_id", sid)
    with pytest.raises(errors.StringDataRightTruncation):
        log(db, "snippet", target_id, "view", **kwargs)
    assert scalar(db, "SELECT count(*) FROM tally.events") == 0


def test_errors_never_echo_ip_or_user_agent(db):
    ip, agent = "198.51.100.77", "SecretAgent/9.9 (unique-marker)"
    for kind, target_type in (("bogus", "snippet"), ("view", "bogus")):
        with pytest.raises(psycopg.Error) as caught:
            log(db, target_type, "x", kind, ip=ip, user_agent=agent)
        diag = caught.value.diag
        text = " ".join(str(part) for part in (diag.message_primary, diag.message_detail,
                                               diag.message_hint, diag.context, caught.value))
        assert ip not in text and "unique-marker" not in text


def test_missing_target_is_discarded_and_counted(db):
    assert log(db, "snippet", "no-such-id", "view", session_id="s") == "discarded_missing_target"
    assert scalar(db, "SELECT count(*) FROM tally.events") == 0
    assert db.execute("SELECT reason::text, count FROM tally.discard_log").fetchall() == [
        ("discarded_missing_target", 1)
    ]


def test_private_target_counts_only_for_its_owner(db, targets):
    sid = targets(visibility="private", owner_id="alice")
    assert log(db, "snippet", sid, "view", user_id="bob") == "discarded_not_visible"
    assert log(db, "snippet", sid, "view", session_id="anon") == "discarded_not_visible"
    assert log(db, "snippet", sid, "view", user_id="alice") == "logged"
    assert scalar(db, "SELECT count(*) FROM tally.events") == 1
    assert scalar(db, "SELECT count FROM tally.discard_log WHERE reason = 'discarded_not_visible'") == 2


def test_unlisted_target_counts_for_everyone(db, targets):
    sid = targets(visibility="unlisted")
    assert log(db, "snippet", sid, "view", session_id="anon") == "logged"


def test_trigger_also_guards_direct_inserts(db):
    db.execute("INSERT INTO tally.events (created_at, target_type, target_id, kind) "
               "VALUES (now(), 'snippet', 'ghost', 'view')")
    assert scalar(db, "SELECT count(*) FROM tally.events") == 0
    assert scalar(db, "SELECT count FROM tally.discard_log") == 1


@pytest.mark.parametrize("txid", [1, 9000000000])  # as if rolled up already; far beyond any rollup
def test_a_direct_insert_cannot_choose_its_txid(db, targets, txid):
    sid = targets()
    with pytest.raises(errors.InvalidParameterValue, match="txid is set by the database"):
        db.execute("INSERT INTO tally.events (created_at, target_type, target_id, kind, txid) "
                   "VALUES (now(), 'snippet', %s, 'copy', %s)", [sid, txid])
    db.execute("INSERT INTO tally.events (created_at, target_type, target_id, kind, txid) "
               "VALUES (now(), 'snippet', %s, 'copy', pg_current_xact_id()::text::bigint)", [sid])
    assert scalar(db, "SELECT events FROM tally.rollup()") == 1


@pytest.mark.parametrize("agent", [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0)",
    "python-requests/2.31",
    "curl/8.5.0",
])
def test_bot_user_agents_are_discarded_and_counted(db, targets, agent):
    sid = targets()
    assert log(db, "snippet", sid, "download", user_agent=agent) == "discarded_bot"
    assert scalar(db, "SELECT count(*) FROM tally.events") == 0
    assert scalar(db, "SELECT count FROM tally.discard_log WHERE reason = 'discarded_bot'") == 1


def test_browser_user_agent_is_not_a_bot(db, targets):
    sid = targets()
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36"
    assert log(db, "snippet", sid, "download", user_agent=agent) == "logged"


def test_retry_with_same_event_id_is_a_duplicate(db, targets):
    sid = targets()
    event_id = str(uuid.uuid4())
    assert log(db, "snippet", sid, "copy", event_id=event_id) == "logged"
    assert log(db, "snippet", sid, "copy", event_id=event_id) == "duplicate"
    assert log(db, "snippet", sid, "copy", event_id=str(uuid.uuid4())) == "logged"
    assert scalar(db, "SELECT count(*) FROM tally.events") == 2


def test_event_id_of_a_rolled_back_call_can_be_retried(db, targets, connect):
    sid = targets()
    event_id = str(uuid.uuid4())
    other = connect()
    with pytest.raises(RuntimeError), other.transaction():
        assert log(other, "snippet", sid, "copy", event_id=event_id) == "logged"
        raise RuntimeError("network error before commit")
    assert log(db, "snippet", sid, "copy", event_id=event_id) == "logged"
    assert scalar(db, "SELECT count(*) FROM tally.events") == 1


def test_user_agents_are_stored_once_and_referenced_by_id(db, targets):
    sid = targets()
    for i in range(3):
        log(db, "snippet", sid, "copy", user_agent="Mozilla/5.0 (X11)", session_id=str(i))
    assert scalar(db, "SELECT count(*) FROM tally.user_agents") == 1
    assert scalar(db, "SELECT count(DISTINCT user_agent_id) FROM tally.events") == 1


def test_new_bot_pattern_applies_to_user_agents_seen_before(db, targets):
    sid = targets()
    assert log(db, "snippet", sid, "copy", user_agent="AcmeFetcher/1.0") == "logged"
    db.execute("INSERT INTO tally.bot_patterns (pattern, note) VALUES ('acmefetcher', 'test')")
    assert log(db, "snippet", sid, "copy", user_agent="AcmeFetcher/1.0") == "discarded_bot"
    db.execute("DELETE FROM tally.bot_patterns WHERE pattern = 'acmefetcher'")
    assert log(db, "snippet", sid, "copy", user_agent="AcmeFetcher/1.0") == "logged"


def test_unknown_kind_error_names_the_accepted_kinds(connect):
    app = connect(APP_LOGIN)  # tally_app cannot read tally.kinds, so the hint must say them
    with pytest.raises(errors.InvalidParameterValue) as caught:
        log(app, "snippet", "x", "like")
    assert caught.value.diag.message_hint == (
        "accepted kinds: builder_export, copy, download, template_use, view")


def test_a_stored_call_runs_no_nested_function_but_the_host_probe(db, targets):
    # The hot path: every guard is a statement of log_event itself, the stored row is vouched for
    # (the trigger's fast path), and the only nested call left is the host-table boundary. Counted
    # with track_functions, in one transaction: a second call of the same visitor is debounced by
    # the slot the first one claimed, and neither leaves the voucher behind.
    sid = targets()
    limit(db, "view", ip_limit=100, user_limit=100)
    with db.transaction():
        db.execute("SET LOCAL track_functions = 'pl'")
        args = {"user_id": "u1", "ip": "203.0.113.7", "user_agent": "Agent/1"}
        assert log(db, "snippet", sid, "view", **args) == "logged"
        called = db.execute("SELECT funcname, calls FROM pg_stat_xact_user_functions ORDER BY funcname").fetchall()
        assert log(db, "snippet", sid, "view", **args) == "debounced"
        assert scalar(db, "SELECT current_setting('tally.voucher', true)") in ("", None)
    # remember_user_agent: Agent/1 is new, a step once per user agent and day, not per call.
    assert called == [("admit_event", 1), ("log_event", 1), ("probe", 1), ("remember_user_agent", 1)]
    assert db.execute("SELECT first_visit, vouched FROM tally.events").fetchall() == [(True, None)]
    assert scalar(db, "SELECT sum(hits) FROM tally.rate_limit_state") == 4  # two counters, two calls


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_under_snapshot_isolation_a_counter_changed_since_the_snapshot_raises_40001_and_a_retry_counts_once(
        db, targets, connect, isolation):
    # The address's rate-limit counter changes after the caller's snapshot was taken: the upsert cannot
    # add to a row its snapshot does not see, so the call fails as any write to it would (40001),
    # storing nothing, and the caller retries its transaction, as that isolation level requires.
    sid = targets()
    limit(db, "download", ip_limit=100)
    assert log(db, "snippet", sid, "download", ip="203.0.113.7") == "logged"
    app = connect()
    app.execute(f"BEGIN ISOLATION LEVEL {isolation}")
    app.execute("SELECT 1")  # the snapshot
    assert log(db, "snippet", sid, "download", ip="203.0.113.7") == "logged"  # the counter changes
    with pytest.raises(errors.SerializationFailure):
        log(app, "snippet", sid, "download", ip="203.0.113.7")
    app.execute("ROLLBACK")
    app.execute(f"BEGIN ISOLATION LEVEL {isolation}")
    assert log(app, "snippet", sid, "download", ip="203.0.113.7") == "logged"
    app.execute("COMMIT")
    assert scalar(db, "SELECT count(*) FROM tally.events") == 3
    assert scalar(db, "SELECT sum(hits) FROM tally.rate_limit_state") == 3
