"""Hostile and broken input: every log_event call ends in a documented outcome or SQLSTATE, stored rows
respect the bounds, the server stays up, and nothing outside ingestion's own tables changes.

Runs TALLY_FUZZ_EXAMPLES cases (default 10,000: the full run in `make test`)."""

import json
import os
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import scalar

EXAMPLES = int(os.environ.get("TALLY_FUZZ_EXAMPLES", "10000"))
OUTCOMES = {"logged", "debounced", "rate_limited", "duplicate", "discarded_missing_target",
            "discarded_not_visible", "discarded_bot"}
# 22023 unknown kind/type or NULL target_id; 22001 over-long identifier; 22P02/22P05 JSON the jsonb type
# refuses (invalid escapes, lone surrogates, \u0000); 54001 JSON nested deeper than the stack allows.
SQLSTATES = {"22023", "22001", "22P02", "22P05", "54001"}
INJECTIONS = ["'; DROP TABLE tally.events; --", "\" OR 1=1 --", "snippet'", "$$; SELECT pg_sleep(10); $$",
              "view\\", "%s%s%n", "../../etc/passwd", "${jndi:ldap://x}", "' || (SELECT current_user) || '",
              "NULL", "null", "\u202eevil", "<script>alert(1)</script>"]
TARGETS = ["t-public", "t-private", "t-unlisted", "it's", "1", "00000000-0000-0000-0000-000000000000"]

# Lone surrogates cannot be encoded as UTF-8 by the driver, so they never reach the server as text.
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=200)
hostile = st.one_of(st.none(), text, st.sampled_from(INJECTIONS), st.just("x" * 1_000_000),
                    st.just("\x01\x02\x1f\x7f"), st.text(max_size=20).map(lambda t: t + "\x00"))


def mostly(valid, bad=hostile):
    """Valid values nine times in ten, so that calls get past validation often enough to store rows
    (one_of would pick each branch alike, and with seven fields almost every call would be refused)."""
    return st.integers(0, 9).flatmap(lambda i: bad if i == 0 else valid)


json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                          max_leaves=20)
metadata = st.one_of(
    st.none(),
    json_value.map(json.dumps),
    st.dictionaries(text, json_value, max_size=5).map(json.dumps),
    st.just(json.dumps({"blob": "y" * 100_000})),
    st.just("[" * 5000 + "]" * 5000),
    st.just('{"a": "\\u0000"}'),
    st.just('{"a": "\\ud800"}'),
    st.just("not json"),
)
ips = st.one_of(st.none(), st.ip_addresses().map(str), text, st.sampled_from(["::1", "300.1.1.1", "1.2.3.4/33"]))
calls = st.fixed_dictionaries({
    "target_type": mostly(st.sampled_from(["snippet", "snippet", "template"])),
    "target_id": mostly(st.sampled_from(TARGETS)),
    "kind": mostly(st.sampled_from(["view", "copy", "download", "template_use", "builder_export"])),
    "user_id": mostly(st.one_of(st.none(), st.sampled_from(["o", "u1", "u2"]))),
    "session_id": mostly(st.one_of(st.none(), text)),
    "ip": ips,
    "user_agent": mostly(st.one_of(st.none(), text)),
    "referrer": mostly(st.one_of(st.none(), text)),
    "metadata": metadata,
    "event_id": st.one_of(st.none(), st.uuids().map(str), st.just("11111111-1111-1111-1111-111111111111")),
})

CALL = ("SELECT tally.log_event(target_type => %(target_type)s, target_id => %(target_id)s, kind => %(kind)s,"
        " user_id => %(user_id)s, session_id => %(session_id)s, ip => %(ip)s, user_agent => %(user_agent)s,"
        " referrer => %(referrer)s, metadata => %(metadata)s::jsonb, event_id => %(event_id)s::uuid)::text")

FINGERPRINT = """
SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
    SELECT 'settings' || s::text AS x FROM tally.settings AS s
    UNION ALL SELECT 'kind' || k::text FROM tally.kinds AS k
    UNION ALL SELECT 'type' || t::text FROM tally.target_types AS t
    UNION ALL SELECT 'bot' || b::text FROM tally.bot_patterns AS b
    UNION ALL SELECT 'snippet' || h::text FROM tally.snippets AS h
    UNION ALL SELECT 'template' || h::text FROM tally.templates AS h
    UNION ALL SELECT 'document' || h::text FROM tally.documents AS h
    UNION ALL SELECT 'object' || c.oid::regclass::text FROM pg_class AS c
        WHERE c.relnamespace IN ('tally'::regnamespace, 'public'::regnamespace)
    UNION ALL SELECT 'function' || p.oid::regprocedure::text FROM pg_proc AS p
        WHERE p.pronamespace IN ('tally'::regnamespace, 'public'::regnamespace)
) AS f
"""


@pytest.mark.slow
def test_log_event_survives_hostile_input(db, connect):
    db.execute("INSERT INTO tally.snippets (id, slug, owner_id, visibility) VALUES "
               "('t-public', 'p', 'o', 'public'), ('t-private', 'q', 'o', 'private'), "
               "('t-unlisted', 'u', 'o', 'unlisted'), ('it''s', 'it''s-a-slug', 'o', 'public'), "
               "('1', 'one', NULL, 'public'), ('00000000-0000-0000-0000-000000000000', 'zero', 'o', 'public')")
    before = scalar(db, FINGERPRINT)
    started = scalar(db, "SELECT pg_postmaster_start_time()")
    caller = connect()
    seen: dict[str, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(calls)
    def call(args):
        try:
            outcome = scalar(caller, CALL, args)
            assert outcome in OUTCOMES
            seen[outcome] = seen.get(outcome, 0) + 1
        except psycopg.DataError as exc:
            if exc.sqlstate is None:  # refused by the driver before sending: NUL in a text value
                assert "NUL" in str(exc)
                seen["driver:NUL"] = seen.get("driver:NUL", 0) + 1
                return
            assert exc.sqlstate in SQLSTATES, (exc.sqlstate, str(exc)[:200])
            seen[exc.sqlstate] = seen.get(exc.sqlstate, 0) + 1
        except psycopg.Error as exc:
            assert exc.sqlstate in SQLSTATES, (exc.sqlstate, str(exc)[:200])
            seen[exc.sqlstate] = seen.get(exc.sqlstate, 0) + 1

    call()
    print(f"fuzz: {sum(seen.values())} calls: {dict(sorted(seen.items()))}")
    assert sum(seen.values()) >= EXAMPLES
    assert {"logged", "22023", "22001"} <= set(seen)
    assert scalar(db, "SELECT pg_postmaster_start_time()") == started, "the server restarted"
    assert scalar(db, FINGERPRINT) == before, "log_event changed something outside ingestion state"
    bad = scalar(db, """
        SELECT count(*) FROM tally.event_log AS e
        WHERE length(e.user_agent) > 512 OR length(e.referrer) > 1024
           OR e.user_agent ~ '[[:cntrl:]]' OR e.referrer ~ '[[:cntrl:]]'
           OR length(e.target_id) > 256 OR length(e.user_id) > 256
           OR (octet_length(e.metadata::text) > 4096 AND e.metadata ->> '_tally' IS NULL)
           OR jsonb_typeof(e.metadata) <> 'object'
    """)
    assert bad == 0
    assert scalar(db, "SELECT count(*) FROM tally.events") == seen.get("logged", 0)


def test_quoted_and_typed_looking_ids_are_ordinary_ids(db, targets):
    from tests.conftest import log

    quoted = targets(target_id="it's \"quoted\"", slug="o'brien's-snippet")
    assert log(db, "snippet", quoted, "copy") == "logged"
    assert log(db, "snippet", "42", "copy") == "discarded_missing_target"
    assert log(db, "snippet", str(uuid.uuid4()), "copy") == "discarded_missing_target"
    db.execute("SELECT tally.rollup()")
    assert scalar(db, "SELECT copies FROM tally.snippets WHERE slug = 'o''brien''s-snippet'") == 1
