"""docs/sql-api.md is generated from COMMENT ON and must match the database."""

from harness.docs import DOCS_PATH, render


def test_committed_sql_api_reference_is_current(db):
    assert DOCS_PATH.read_text() == render(db), "docs/sql-api.md is stale: run `make docs`"
