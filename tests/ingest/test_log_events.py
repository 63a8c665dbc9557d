"""tally.log_events(jsonb): a batch does exactly what one log_event call per element, in array order,
would do (outcomes, errors, stored rows and side state), set-based, exact under concurrency, bounded."""

import json
import random
import uuid
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors

from tests.conftest import crossed, limit, log, run_together, scalar

NOON = "2026-03-02 12:00:00+00"
AFTER_MIDNIGHT = "2026-03-02 00:03:00+00"  # inside the view (30 min) and copy (5 min) windows of yesterday
EVENT_IDS = [str(uuid.UUID(int=i + 1)) for i in range(3)]

# The state a call can change, in a form comparable across two transactions (no serial ids).
STATE = {
    "events": """
        SELECT e.created_at, e.target_type, e.target_id, e.kind, e.user_id, e.visitor, e.ip, u.user_agent,
            e.referrer, e.metadata, e.first_visit, e.previous_visitor, e.vouched
        FROM tally.events AS e LEFT JOIN tally.user_agents AS u ON u.id = e.user_agent_id ORDER BY e.id""",
    "debounce": "SELECT key, last_at FROM tally.debounce ORDER BY key",
    "rate_limit_state": "SELECT key, window_start, hits FROM tally.rate_limit_state WHERE hits > 0 ORDER BY 1, 2",
    "rejections": "SELECT window_start, key, kind, rejected FROM tally.rate_limit_rejections ORDER BY 1, 2, 3",
    "event_ids": "SELECT event_id, seen_at FROM tally.event_ids ORDER BY 1",
    "user_agents": "SELECT hash, user_agent, is_bot, last_used FROM tally.user_agents ORDER BY 1",
    "discards": """SELECT day, target_type, kind, reason::text, sum(count) FROM tally.discards
                   GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""",
    "salts": "SELECT day, inner_pad FROM tally.visitor_salts ORDER BY 1",
}


def state(conn: psycopg.Connection[Any]) -> dict[str, list[Any]]:
    return {name: conn.execute(query).fetchall() for name, query in STATE.items()}


def batch(conn: psycopg.Connection[Any], elements: list[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT ord, outcome::text, error, message FROM tally.log_events(%s::jsonb)", [json.dumps(elements)]
    ).fetchall()


def one_by_one(conn: psycopg.Connection[Any], elements: list[Any]) -> list[tuple[Any, ...]]:
    """log_event per element, each in a savepoint; (ord, outcome, SQLSTATE, message) like log_events."""
    rows = []
    for ord_, element in enumerate(elements, start=1):
        # Not expressible as a call: the batch's own shape rules.
        if not isinstance(element, dict):
            rows.append((ord_, None, "22023", "element is not a JSON object"))
            continue
        if "userid" in element:
            rows.append((ord_, None, "22023", "unknown key 'userid'"))
            continue
        try:
            with conn.transaction():
                args = {k: (json.dumps(v) if k == "metadata" and v is not None else v) for k, v in element.items()}
                outcome = log(conn, args.pop("target_type"), args.pop("target_id"), args.pop("kind"), **args)
            rows.append((ord_, outcome, None, None))
        except psycopg.Error as exc:
            rows.append((ord_, None, exc.sqlstate, exc.diag.message_primary))
    return rows


def comparable(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # Messages are compared where log_event raises them itself (22023, 22001); a cast error's differs.
    return [(o, out, err, msg if err in ("22023", "22001") and msg is not None else None) for o, out, err, msg in rows]


@pytest.fixture
def universe(db, targets):
    """Targets of every kind of visibility, limits low enough to bite, two debounce windows, salts made."""
    targets("snippet", target_id="pub", visibility="public")
    targets("snippet", target_id="unl", visibility="unlisted")
    targets("snippet", target_id="priv", visibility="private", owner_id="u1")
    targets("document", target_id="doc", visibility="public")
    limit(db, "download", ip_limit=3, user_limit=1)
    limit(db, "copy", ip_limit=2)
    db.execute("UPDATE tally.kinds SET debounce = '5 minutes' WHERE kind = 'copy'")
    db.execute("UPDATE tally.settings SET clock_override = true")
    db.execute("SELECT tally.visitor_salt('2026-03-01'), tally.visitor_salt('2026-03-02')")


def maybe(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


element = st.fixed_dictionaries(
    {
        "target_type": maybe(["snippet"] * 12 + ["document", "widget"]),
        "target_id": maybe(["pub"] * 6 + ["unl", "unl", "priv", "priv", "doc", "missing", None, "x" * 300]),
        "kind": maybe(["view"] * 6 + ["download"] * 4 + ["copy", "copy", "template_use", "bogus"]),
        # Drawn for every element (None: absent): optional keys would mostly be left out.
        "user_id": maybe([None, None, "u1", "u1", "u2"]),
        "session_id": maybe([None, None, "s1", "s2"]),
        "ip": maybe([None, "203.0.113.5", "203.0.113.5", "2001:db8::1", "2001:db8::1:2", "1.2.3.4, 10.0.0.1"]),
        "user_agent": maybe([None, "Mozilla/5.0 A", "Mozilla/5.0 A", "Mozilla/5.0 B", "Googlebot/2.1", "new agent 1",
                             "new\x01agent 2"]),
        "event_id": maybe([None] * 12 + [*EVENT_IDS, "not-a-uuid"]),
    },
    optional={
        "referrer": maybe([None, "https://example.com/a", "ref\x02erer"]),
        "metadata": maybe([None, {"a": 1}, [1, 2], {"big": "x" * 5000}]),
    },
)
malformed = st.sampled_from(
    [[1], "view", {"target_type": "snippet", "target_id": "pub", "kind": "view", "userid": "x"}]
)
# Mostly well-formed: one_of would draw each branch alike.
one = st.sampled_from([element] * 19 + [malformed]).flatmap(lambda strategy: strategy)
# Batches long enough to repeat viewers, keys and event_ids (lists would mostly be drawn short).
elements = st.integers(1, 40).flatmap(lambda n: st.lists(one, min_size=n, max_size=n))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.lists(element, max_size=12), elements=elements, at=st.sampled_from([NOON, AFTER_MIDNIGHT]),
       earlier=st.sampled_from(["10 minutes", "0 seconds"]))
def test_a_batch_does_what_one_call_per_element_does(db, universe, prefix, elements, at, earlier):
    conn = db
    results = []
    for run in (batch, one_by_one):
        conn.execute("BEGIN")
        try:
            # Earlier traffic: in the same rate-limit window, or ten minutes before (yesterday, for the
            # batch just after midnight).
            conn.execute("SELECT set_config('tally.clock', (%s::timestamptz - %s::interval)::text, false)",
                         [at, earlier])
            one_by_one(conn, prefix)
            conn.execute("SELECT set_config('tally.clock', %s, false)", [at])
            rows = run(conn, elements)
            results.append((comparable(rows), state(conn)))
        finally:
            conn.execute("ROLLBACK")
    (batch_rows, batch_state), (single_rows, single_state) = results
    assert batch_rows == single_rows
    for name in STATE:
        assert batch_state[name] == single_state[name], name


def test_the_batch_returns_one_row_per_element_in_order_with_errors_in_place(db, targets):
    targets("snippet", target_id="pub")
    elements = [
        {"target_type": "snippet", "target_id": "pub", "kind": "view", "session_id": "s"},
        {"target_type": "snippet", "target_id": "pub", "kind": "bogus", "ip": "203.0.113.9",
         "user_agent": "Secret Agent"},
        {"target_type": "snippet", "target_id": "pub", "kind": "view", "session_id": "s"},
        {"target_type": "snippet", "target_id": "pub", "kind": "view", "event_id": "nope"},
        {"target_type": "snippet", "target_id": "pub", "kind": "view", "userid": "x"},
        {"target_type": "snippet", "target_id": {"id": 1}, "kind": "view"},
        ["not", "an", "object"],
        {"target_type": "snippet", "target_id": "pub", "kind": "view", "user_id": "u" * 300},
        {"target_type": "gadget", "target_id": "pub", "kind": "view"},
        {"target_type": "snippet", "kind": "view"},
        {"target_type": "snippet", "target_id": 42, "kind": "copy"},
        {"target_type": "snippet", "target_id": "pub", "kind": "view", "at": "2026-01-01"},
    ]
    rows = batch(db, elements)
    assert [r[0] for r in rows] == list(range(1, len(elements) + 1))
    assert [(r[1], r[2]) for r in rows] == [
        ("logged", None), (None, "22023"), ("debounced", None), (None, "22P02"), (None, "22023"), (None, "22023"),
        (None, "22023"), (None, "22001"), (None, "22023"), (None, "22023"), ("discarded_missing_target", None),
        (None, "22023"),
    ]
    messages = [r[3] for r in rows]
    assert messages[1] == "unknown event kind 'bogus'"
    assert messages[4] == "unknown key 'userid'"
    assert messages[5] == "target_id must be a string or a number"
    assert messages[6] == "element is not a JSON object"
    assert messages[7] == "target_id, user_id and session_id are limited to 256 characters"
    assert messages[11] == "at is accepted only while settings.clock_override is on"
    assert not any("203.0.113.9" in (m or "") or "Secret" in (m or "") for m in messages)
    assert scalar(db, "SELECT count(*) FROM tally.events") == 1


def test_a_batch_over_batch_max_or_not_an_array_is_refused_whole(db, targets):
    targets("snippet", target_id="pub")
    db.execute("UPDATE tally.settings SET batch_max = 5")
    one = {"target_type": "snippet", "target_id": "pub", "kind": "copy"}
    with pytest.raises(errors.InvalidParameterValue, match=r"at most 5 events .*this one has 6"):
        batch(db, [one] * 6)
    assert [r[1] for r in batch(db, [one] * 5)] == ["logged"] * 5
    for value in ({"target_type": "snippet"}, "[]x", None):
        with pytest.raises(errors.InvalidParameterValue, match="JSON array"):
            db.execute("SELECT * FROM tally.log_events(%s::jsonb)", [json.dumps(value) if value != "[]x" else '"x"'])
    assert batch(db, []) == []
    # Bounded in bytes as well: 64 kB per element of batch_max (5 here), whatever the count.
    with pytest.raises(errors.InvalidParameterValue, match=r"at most 327680 bytes"):
        batch(db, [{**one, "referrer": "r" * 400_000}])
    assert [r[1] for r in batch(db, [{**one, "referrer": "r" * 200_000}])] == ["logged"]
    assert scalar(db, "SELECT count(*) FROM tally.events") == 6
    assert scalar(db, "SELECT max(length(referrer)) FROM tally.events") == 1024


def test_applications_call_log_events_unqualified_and_nothing_behind_it(db, connect, targets):
    targets("snippet", target_id="pub")
    app = connect()
    app.execute("SET ROLE tally_app")
    rows = app.execute(
        "SELECT ord, outcome::text FROM log_events(%s::jsonb)",
        [json.dumps([{"target_type": "snippet", "target_id": "pub", "kind": "copy"}])],
    ).fetchall()
    assert rows == [(1, "logged")]
    for call in ("tally.parse_batch('[]', now())", "tally.claim_visits('{}', '{}', now())",
                 "tally_host.probe_many('snippet', '{}', '{}')"):
        with pytest.raises(errors.InsufficientPrivilege):
            app.execute(f"SELECT * FROM {call}")


def test_a_direct_insert_cannot_vouch_for_itself(db):
    # Only the INSERT of log_events knows its token: any other value is cleared and the row validated.
    db.execute("""
        INSERT INTO tally.events (created_at, target_type, target_id, kind, vouched)
        VALUES (now(), 'snippet', 'no-such-target', 'copy', gen_random_uuid())
    """)
    db.execute("SELECT set_config('tally.voucher', 'guess', false)")
    db.execute("""
        INSERT INTO tally.events (created_at, target_type, target_id, kind, vouched)
        VALUES (now(), 'snippet', 'no-such-target', 'copy', gen_random_uuid())
    """)
    assert scalar(db, "SELECT count(*) FROM tally.events") == 0
    assert scalar(db, "SELECT sum(count) FROM tally.discards WHERE reason = 'discarded_missing_target'") == 2


def test_stored_rows_never_keep_the_voucher(db, targets):
    targets("snippet", target_id="pub")
    batch(db, [{"target_type": "snippet", "target_id": "pub", "kind": "copy"}] * 3)
    assert scalar(db, "SELECT count(*) FROM tally.events WHERE vouched IS NULL AND previous_visitor IS NULL") == 3
    assert scalar(db, "SELECT current_setting('tally.voucher', true)") in ("", None)


def test_ids_of_a_key_type_are_canonical_and_garbage_names_no_target(db):
    db.execute("""
        CREATE TABLE public.things (
            id bigint PRIMARY KEY, slug text NOT NULL, views bigint NOT NULL DEFAULT 0,
            copies bigint NOT NULL DEFAULT 0, downloads bigint NOT NULL DEFAULT 0, uses bigint NOT NULL DEFAULT 0,
            counters_refreshed_at timestamptz
        );
        INSERT INTO public.things (id, slug) VALUES (43, 'the-thing');
        GRANT SELECT, UPDATE ON public.things TO tally_host_access;
        SELECT tally.register_target_type('thing', 'public.things');
    """)
    rows = batch(db, [
        {"target_type": "thing", "target_id": "043", "kind": "view", "session_id": "s"},
        {"target_type": "thing", "target_id": "43", "kind": "view", "session_id": "s"},
        {"target_type": "thing", "target_id": "abc", "kind": "copy"},
        {"target_type": "thing", "target_id": "+43", "kind": "copy"},
    ])
    assert [r[1] for r in rows] == ["logged", "debounced", "discarded_missing_target", "logged"]
    assert db.execute("SELECT DISTINCT target_id FROM tally.events").fetchall() == [("43",)]


def test_a_batch_makes_a_missing_salt_once(db, targets, clock):
    targets("snippet", target_id="pub")
    clock(db, "2031-05-05 10:00:00+00")
    rows = batch(db, [{"target_type": "snippet", "target_id": "pub", "kind": "view", "user_id": f"u{i % 3}"}
                      for i in range(9)])
    assert [r[1] for r in rows] == ["logged"] * 3 + ["debounced"] * 6
    assert scalar(db, "SELECT count(*) FROM tally.visitor_salts WHERE day = '2031-05-05'") == 1
    assert scalar(db, """
        SELECT count(*) FROM tally.events AS e, tally.visitor_salts AS s
        WHERE s.day = '2031-05-05'
            AND e.visitor = tally.visitor_key(s.inner_pad, s.outer_pad, row('user', e.user_id)::text)
    """) == 3


def test_per_element_clocks_are_honoured_with_the_override(db, targets, clock):
    targets("snippet", target_id="pub")
    clock(db, "2026-03-02 12:00:00+00")
    rows = batch(db, [
        {"target_type": "snippet", "target_id": "pub", "kind": "view", "session_id": "s", "at": "2026-03-02 10:00Z"},
        {"target_type": "snippet", "target_id": "pub", "kind": "view", "session_id": "s", "at": "2026-03-02 10:20Z"},
        {"target_type": "snippet", "target_id": "pub", "kind": "view", "session_id": "s", "at": "2026-03-02 10:31Z"},
        {"target_type": "snippet", "target_id": "pub", "kind": "view", "session_id": "s", "at": "yesterday-ish"},
        {"target_type": "snippet", "target_id": "pub", "kind": "copy"},
    ])
    assert [(r[1], r[2]) for r in rows] == [
        ("logged", None), ("debounced", None), ("logged", None), (None, "22007"), ("logged", None)]
    assert [r[0].isoformat() for r in db.execute("SELECT created_at FROM tally.events ORDER BY id")] == [
        "2026-03-02T10:00:00+00:00", "2026-03-02T10:31:00+00:00", "2026-03-02T12:00:00+00:00"]
    assert scalar(db, "SELECT current_setting('tally.clock')") == "2026-03-02 12:00:00+00"


def test_eight_connections_of_batches_and_calls_admit_exactly_the_limit(db, connect, targets):
    # 8 connections x 10 batches x 10 downloads from one address, limit 50: exactly 50, whatever the
    # interleaving; two of the connections send single calls instead, so both paths share the counter.
    targets("snippet", target_id="pub")
    limit(db, "download", ip_limit=50)
    conns = [connect() for _ in range(8)]
    one = {"target_type": "snippet", "target_id": "pub", "kind": "download", "ip": "198.51.100.7"}

    def send(i: int) -> list[str]:
        outcomes = []
        for _ in range(10):
            if i < 6:
                outcomes += [r[1] for r in batch(conns[i], [one] * 10)]
            else:
                outcomes += [log(conns[i], "snippet", "pub", "download", ip="198.51.100.7") for _ in range(10)]
        return outcomes

    outcomes = [o for per in run_together(8, send) for o in per]
    assert outcomes.count("logged") == 50
    assert outcomes.count("rate_limited") == 750
    assert scalar(db, "SELECT count(*) FROM tally.events") == 50
    assert scalar(db, "SELECT sum(hits) FROM tally.rate_limit_state") == 800
    assert scalar(db, "SELECT sum(rejected) FROM tally.rate_limit_rejections") == 750


def test_sixteen_connections_sharing_viewers_store_each_view_once_without_deadlock(db, connect, targets):
    # Batches in random orders over shared slots, rate-limit keys and event_ids: every lock is taken in
    # key order, so no two of them wait on each other; each (viewer, target) view is stored once.
    for t in range(5):
        targets("snippet", target_id=f"t{t}")
    limit(db, "download", ip_limit=1000, user_limit=1000)
    conns = [connect() for _ in range(16)]
    views = [{"target_type": "snippet", "target_id": f"t{t}", "kind": "view", "user_id": f"v{v}"}
             for v in range(20) for t in range(5)]
    downloads = [{"target_type": "snippet", "target_id": f"t{t}", "kind": "download", "user_id": f"v{t}",
                  "ip": f"203.0.113.{t}", "event_id": EVENT_IDS[t % 3]} for t in range(5)]

    def send(i: int) -> list[str]:
        rng = random.Random(i)
        outcomes = []
        for _ in range(3):
            elements = views + downloads
            rng.shuffle(elements)
            outcomes += [r[1] for r in batch(conns[i], elements[:60])]
            outcomes += [r[1] for r in batch(conns[i], elements[60:])]
        return outcomes

    outcomes = [o for per in run_together(16, send) for o in per]
    assert outcomes.count("logged") == 100 + 3
    assert scalar(db, "SELECT count(*) FROM tally.events WHERE kind = 'view'") == 100
    assert scalar(db, "SELECT count(DISTINCT (target_id, user_id)) FROM tally.events WHERE kind = 'view'") == 100
    assert scalar(db, "SELECT count(*) FROM tally.events WHERE first_visit") == 100


def test_an_event_id_refused_by_a_rate_limit_is_claimed_by_a_later_element(db, targets):
    # The refused element does not claim its event_id, so the next element with it is not a
    # duplicate: it reaches the limits itself (the batch resolves this in rounds).
    targets("snippet", target_id="pub")
    limit(db, "download", user_limit=1)
    e1, e2 = EVENT_IDS[:2]
    elements = [
        {"target_type": "snippet", "target_id": "pub", "kind": "download", "user_id": "u1", "event_id": e1},
        {"target_type": "snippet", "target_id": "pub", "kind": "download", "user_id": "u1", "event_id": e2},
        {"target_type": "snippet", "target_id": "pub", "kind": "download", "user_id": "u1", "event_id": e2},
        {"target_type": "snippet", "target_id": "pub", "kind": "copy", "user_id": "u1", "event_id": e2},
        {"target_type": "snippet", "target_id": "pub", "kind": "download", "user_id": "u2", "event_id": e2},
        {"target_type": "snippet", "target_id": "pub", "kind": "copy", "user_id": "u1", "event_id": e2,
         "user_agent": "Googlebot/2.1"},
    ]
    expected = ["logged", "rate_limited", "rate_limited", "logged", "duplicate", "duplicate"]
    db.execute("BEGIN")
    assert [r[1] for r in one_by_one(db, elements)] == expected
    db.execute("ROLLBACK")
    assert [r[1] for r in batch(db, elements)] == expected
    assert scalar(db, "SELECT sum(hits) FROM tally.rate_limit_state") == 4  # 3 downloads, 1 copy
    assert scalar(db, "SELECT sum(rejected) FROM tally.rate_limit_rejections WHERE key = 'user:u1'") == 2


def test_a_batch_that_fills_a_limit_exactly_is_admitted_and_the_next_hits_are_refused(db, targets):
    # With every hit of the batch counted, a counter at its limit refuses nobody (the rounds are skipped);
    # one hit past it refuses the element past it, and that hit still counts, as a single call's does.
    targets("snippet", target_id="pub")
    limit(db, "download", ip_limit=3)

    def downloads(*ips: str) -> list[dict[str, str]]:
        return [{"target_type": "snippet", "target_id": "pub", "kind": "download", "ip": ip} for ip in ips]

    log(db, "snippet", "pub", "download", ip="198.51.100.7")
    assert [r[1] for r in batch(db, downloads("198.51.100.7", "198.51.100.7"))] == ["logged", "logged"]
    assert [r[1] for r in batch(db, downloads("203.0.113.9", "198.51.100.7"))] == ["logged", "rate_limited"]
    assert scalar(db, "SELECT count(*) FROM tally.events") == 4
    assert db.execute("SELECT hits FROM tally.rate_limit_state ORDER BY hits").fetchall() == [(1,), (4,)]
    assert scalar(db, "SELECT sum(rejected) FROM tally.rate_limit_rejections WHERE key = 'ip:198.51.100.7'") == 1


hostile_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                       max_size=80)
json_any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=10,
)
hostile_element = st.one_of(
    json_any,
    st.dictionaries(st.sampled_from(["target_type", "target_id", "kind", "user_id", "session_id", "ip",
                                     "user_agent", "referrer", "metadata", "event_id", "at", "extra"]),
                    json_any, max_size=10),
    element,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(elements=st.lists(hostile_element, max_size=20))
def test_hostile_elements_get_a_row_each_and_never_fail_the_batch(db, universe, elements):
    rows = batch(db, elements)
    assert [r[0] for r in rows] == list(range(1, len(elements) + 1))
    for _, outcome, error, message in rows:
        assert (outcome is None) == (error is not None)
        assert error in (None, "22023", "22001", "22P02")
        assert error is None or message
    assert scalar(db, "SELECT count(*) FROM tally.events WHERE vouched IS NOT NULL OR previous_visitor IS NOT NULL") \
        == 0


@pytest.mark.parametrize(("kind", "field", "expected"), [
    ("download", "ip", ["logged", "rate_limited"]),  # each holds its address's counter, wants the other's
    ("copy", "event_id", ["duplicate", "duplicate"]),  # each holds its event_id's claim, wants the other's
    ("view", "session_id", ["debounced", "debounced"]),  # each holds its debounce slot, wants the other's
])
def test_a_batch_in_a_lock_cycle_ends_fail_closed_as_log_event_does_not_in_40p01(db, targets, connect,
                                                                                    kind, field, expected):
    # Two open transactions each send a batch for A, then one for B, in opposite orders. The detector
    # fails one wait; that batch stores nothing and returns the outcome of the step it waited in, and
    # its transaction goes on. (The survivor then finds the victim's claim: duplicate and debounced.)
    sid = targets()
    limit(db, kind, ip_limit=100 if field == "ip" else None)
    values = ["203.0.113.1", "203.0.113.2"] if field == "ip" else [str(uuid.uuid4()), str(uuid.uuid4())]

    def send(conn: psycopg.Connection[Any], value: str) -> str:
        rows = batch(conn, [{"target_type": "snippet", "target_id": sid, "kind": kind, field: value},
                            {"target_type": "snippet", "target_id": sid, "kind": "template_use"}])
        assert rows[1][1] in ("logged", "debounced", "rate_limited", "duplicate")
        return str(rows[0][1])

    results = crossed(connect, lambda conn, i: send(conn, values[i]), lambda conn, i: send(conn, values[1 - i]))
    assert sorted(results.values()) == expected
    stored = 2 + expected.count("logged")
    assert scalar(db, "SELECT count(*) FROM tally.events WHERE kind = %s", [kind]) == stored
    assert scalar(db, "SELECT coalesce(sum(count), 0) FROM tally.discard_log WHERE kind = %s", [kind]) == 2 + 2 - stored
    assert scalar(db, "SELECT current_setting('tally.voucher', true)") in ("", None)
