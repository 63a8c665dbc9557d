"""Counters equal events whatever spelling of an id the caller used: the stored target_id is the host
key's canonical text, so debounce, daily counts, counters, counters_live, trending and rebuild agree."""

import uuid

import pytest

from tests.conftest import log, scalar

KEY_TYPES = {
    "bigint": ("43", ["43", "043", "+43", " 43", "43 "]),
    "integer": ("7", ["7", "007", "+7", " 7"]),
    "uuid": (
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
         "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", "a0eebc999c0b4ef8bb6d6bb9bd380a11"],
    ),
}


@pytest.fixture(params=sorted(KEY_TYPES))
def keyed(request, db):
    """A registered type 'thing' whose key is of the parametrised type, with one row; returns its spellings."""
    key_type = request.param
    canonical, spellings = KEY_TYPES[key_type]
    db.execute(f"""
        CREATE TABLE public.things (
            id {key_type} PRIMARY KEY, slug text NOT NULL,
            views bigint NOT NULL DEFAULT 0, copies bigint NOT NULL DEFAULT 0, downloads bigint NOT NULL DEFAULT 0,
            uses bigint NOT NULL DEFAULT 0, counters_refreshed_at timestamptz
        );
        INSERT INTO public.things (id, slug) VALUES ('{canonical}', 'the-thing');
        GRANT SELECT, UPDATE ON public.things TO tally_host_access;
        SELECT tally.register_target_type('thing', 'public.things');
    """)
    return canonical, spellings


def test_every_spelling_of_an_id_counts_once_each_under_the_canonical_id(db, keyed):
    canonical, spellings = keyed
    for spelling in spellings:
        for _ in range(3):
            assert log(db, "thing", spelling, "copy") == "logged"
    logged = 3 * len(spellings)
    assert db.execute("SELECT DISTINCT target_id FROM tally.events").fetchall() == [(canonical,)]
    assert scalar(db, "SELECT copies FROM tally.counters_live WHERE target_type = 'thing'") == logged
    db.execute("SELECT tally.rollup(); SELECT tally.refresh_trending()")
    assert scalar(db, "SELECT copies FROM public.things") == logged
    assert db.execute("SELECT target_id, count FROM tally.daily_counts").fetchall() == [(canonical, logged)]
    assert db.execute("SELECT target_id, copies FROM tally.trending('thing', '7d', 5)").fetchall() == \
        [(canonical, logged)]
    assert scalar(db, "SELECT tally.rebuild_counters()") == 0


def test_a_viewer_is_debounced_across_spellings(db, keyed):
    _, spellings = keyed
    outcomes = [log(db, "thing", spelling, "view", session_id="one-session") for spelling in spellings]
    assert outcomes == ["logged"] + ["debounced"] * (len(spellings) - 1)


def test_an_id_of_the_wrong_type_names_no_target(db, keyed):
    assert log(db, "thing", "not-" + uuid.uuid4().hex, "copy") == "discarded_missing_target"
    assert log(db, "thing", "99999999999999999999999999", "copy") == "discarded_missing_target"
