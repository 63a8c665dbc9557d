"""The README's recipes run as written: a test feeds the fenced SQL block to psql, as a user pasting it
would, so the text cannot drift."""

import re
import subprocess

from harness import ROOT
from tests.conftest import scalar


def fenced_sql_after(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    match = re.search(r"```sql\n(.*?)```", section, re.S)
    assert match, f"no sql block after {heading!r}"
    return match.group(1)


def test_own_tables_recipe_runs_exactly_as_written(db, dsn):
    block = fenced_sql_after("**Your own tables.**")
    out = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", dsn], input=block, text=True,
                         capture_output=True, check=True).stdout
    assert "ok|1" in out.splitlines()
    assert scalar(db, "SELECT views FROM app.recipes WHERE id = 1") == 1
    assert db.execute("SELECT slug, views FROM tally.counters_live WHERE target_type = 'recipe'").fetchall() == \
        [("pancakes", 1)]


def test_batch_example_runs_as_written(db, dsn):
    db.execute("INSERT INTO tally.snippets (id, slug, visibility) VALUES ('ck9x', 'ck9x', 'public')")
    block = fenced_sql_after("**Batches: `log_events`.**")
    out = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", dsn], input=block, text=True,
                         capture_output=True, check=True).stdout
    assert out.splitlines() == ["1|logged||", "2|logged||", "3||22023|unknown event kind 'veiw'"]
