-- The source each view generated from the target registry was last made from
-- (tally.build_target_views). A rebuild that would make a view again from the same source leaves it
-- alone: registering a type that is registered already, as every instance of an application does
-- when it starts, then takes no lock on the views and cannot be held up by their readers.
CREATE TABLE tally.generated_views (
    name name PRIMARY KEY,
    source text NOT NULL,
    made_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE tally.generated_views IS
'The statement each registry-generated view (counters_live, trending_7d, trending_30d) was last made by; an '
'unchanged view is not made again.';
COMMENT ON COLUMN tally.generated_views.name IS 'The view''s name in schema tally.';
COMMENT ON COLUMN tally.generated_views.source IS 'The CREATE OR REPLACE VIEW statement it was last made by.';
COMMENT ON COLUMN tally.generated_views.made_at IS 'When it was last made.';
