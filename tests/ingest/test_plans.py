"""log_event's and log_events' plans probe indexes, whatever the statistics say: a plan that hashes a
side table is fine on one user agent and falls 15x on twenty thousand."""

import json
import uuid

import pytest

from tests.conftest import log, nested_plans

# Tables that grow with traffic (kinds and target_types hold a handful of rows: a scan is right there).
SIDE_TABLES = ["user_agents", "event_ids", "debounce", "rate_limit_state", "snippets"]


@pytest.mark.parametrize("analysed", [True, False])
def test_log_event_probes_indexes_with_20000_known_user_agents(db, targets, analysed):
    sid = targets()
    db.execute("INSERT INTO tally.user_agents (hash, user_agent, is_bot, last_used) "
               "SELECT md5('Agent/' || g)::uuid, 'Agent/' || g, false, current_date FROM generate_series(1, 20000) g")
    db.execute("ANALYZE tally.user_agents")
    if not analysed:  # as a database restored without statistics, or one-row tables autovacuum never analysed
        db.execute("UPDATE pg_class SET reltuples = -1, relpages = 10 "
                   "WHERE oid IN ('tally.settings'::regclass, 'tally.kinds'::regclass, 'tally.rollup_state'::regclass)")
    plans = nested_plans(db, lambda: log(db, "snippet", sid, "view", ip="203.0.113.9", user_agent="Agent/77",
                                         event_id="8c0f2d5e-3c5b-4a55-9d1e-5c0b7f6a1d22"))
    assert "Query Text" in plans
    for table in SIDE_TABLES:
        assert f"Seq Scan on {table}" not in plans, table
    assert "Index Scan using user_agents_hash_key" in plans


@pytest.mark.parametrize("analysed", [True, False])
def test_log_events_probes_indexes_with_20000_known_user_agents(db, targets, analysed):
    # The sixth call of a session runs the cached generic plans: those are the ones checked.
    sids = [targets() for _ in range(5)]
    # Seen yesterday: each batch marks some used today, and adds new ones.
    db.execute("INSERT INTO tally.user_agents (hash, user_agent, is_bot, last_used) SELECT md5('Agent/' || g)::uuid,"
               " 'Agent/' || g, false, current_date - 1 FROM generate_series(1, 20000) g")
    db.execute("INSERT INTO tally.event_ids (event_id, seen_at) SELECT gen_random_uuid(), now() "
               "FROM generate_series(1, 20000)")
    db.execute("ANALYZE tally.user_agents; ANALYZE tally.event_ids")
    if not analysed:
        db.execute("UPDATE pg_class SET reltuples = -1, relpages = 10 "
                   "WHERE oid IN ('tally.settings'::regclass, 'tally.kinds'::regclass, 'tally.rollup_state'::regclass)")

    def batch(n: int) -> None:
        elements = [{"target_type": "snippet", "target_id": sids[i % 5], "kind": ["view", "download"][i % 2],
                     "session_id": str(uuid.uuid4()), "ip": f"203.0.113.{i}",
                     "user_agent": f"Agent/{n * 1000 + i * (1 if i % 3 else 9973)}",
                     "event_id": str(uuid.uuid4())} for i in range(50)]
        db.execute("SELECT count(*) FROM tally.log_events(%s::jsonb)", [json.dumps(elements)])

    for n in range(5):
        batch(n)
    plans = nested_plans(db, lambda: batch(5))
    assert "Query Text" in plans
    for table in SIDE_TABLES:
        assert f"Seq Scan on {table}" not in plans, table
    assert "Index Scan using user_agents_hash_key" in plans
