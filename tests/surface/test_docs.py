"""docs/sql-api.md is generated from COMMENT ON and must match the database."""

from harness.docs import DOCS_PATH, render
from tests.conftest import scalar


def test_committed_sql_api_reference_is_current(db):
    assert DOCS_PATH.read_text() == render(db), "docs/sql-api.md is stale: run `make docs`"


PERSONAL_COLUMNS = [
    ("events", "ip"), ("events", "user_agent_id"), ("events", "user_id"), ("events", "referrer"),
    ("events", "metadata"),
    ("user_agents", "user_agent"), ("rate_limit_rejections", "key"), ("rate_limit_log", "key"),
    ("event_log", "ip"), ("event_log", "user_agent"), ("event_log", "user_id"), ("event_log", "referrer"),
    ("event_log", "metadata"),
]


def test_every_column_holding_personal_data_is_marked_in_the_reference(db):
    reference = DOCS_PATH.read_text()
    for table, column in PERSONAL_COLUMNS:
        comment = scalar(db, "SELECT col_description(%s::regclass, attnum) FROM pg_attribute "
                             "WHERE attrelid = %s::regclass AND attname = %s",
                         [f"tally.{table}", f"tally.{table}", column])
        assert comment and comment.startswith("Personal data"), (table, column)
        assert f"| `{column}` |" in reference
    assert reference.count("| **personal data**") >= len(PERSONAL_COLUMNS)


def test_every_table_view_and_column_has_a_comment(db):
    missing = db.execute("""
        SELECT c.relname || coalesce('.' || a.attname, '')
        FROM pg_class AS c
        LEFT JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relnamespace = 'tally'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
          AND (obj_description(c.oid, 'pg_class') IS NULL OR col_description(c.oid, a.attnum) IS NULL)
    """).fetchall()
    assert missing == []
    assert "(no comment)" not in DOCS_PATH.read_text()
