-- The target registry and the default host tables (snippet, template, document).

CREATE TABLE tally.target_types (
    target_type text PRIMARY KEY CHECK (target_type ~ '^[a-z][a-z0-9_]{0,39}$'),
    host_table regclass NOT NULL,
    key_column name NOT NULL DEFAULT 'id',
    slug_column name NOT NULL DEFAULT 'slug',
    owner_column name,
    visibility_column name,
    visible_values text[] NOT NULL DEFAULT '{public,unlisted}',
    listed_values text[] NOT NULL DEFAULT '{public}',
    owner_only_values text[] NOT NULL DEFAULT '{private}'
);

COMMENT ON TABLE tally.target_types IS
'Where each target type lives. Change only through tally.register_target_type(), which rebuilds the views that depend on it.';
COMMENT ON COLUMN tally.target_types.visibility_column IS
'NULL: every row is visible. Otherwise rows whose value is in visible_values are visible to all, '
'rows whose value is in owner_only_values only to the user in owner_column, others to nobody. '
'Only rows whose value is in listed_values appear in trending lists.';

CREATE TABLE tally.snippets (
    id text PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    owner_id text,
    visibility text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'unlisted', 'private')),
    views bigint NOT NULL DEFAULT 0,
    copies bigint NOT NULL DEFAULT 0,
    downloads bigint NOT NULL DEFAULT 0,
    uses bigint NOT NULL DEFAULT 0,
    favorites_count bigint NOT NULL DEFAULT 0,
    comments_count bigint NOT NULL DEFAULT 0,
    votes_up bigint NOT NULL DEFAULT 0,
    votes_down bigint NOT NULL DEFAULT 0,
    counters_refreshed_at timestamptz
);

CREATE TABLE tally.templates (LIKE tally.snippets INCLUDING ALL);
CREATE TABLE tally.documents (LIKE tally.snippets INCLUDING ALL);

COMMENT ON TABLE tally.snippets IS 'Default host table for target type snippet. Counters are written by tally.rollup().';
COMMENT ON TABLE tally.templates IS 'Default host table for target type template. Counters are written by tally.rollup().';
COMMENT ON TABLE tally.documents IS 'Default host table for target type document. Counters are written by tally.rollup().';
