-- The default content types. Re-registering is harmless: it updates the row and rebuilds the views.
SELECT tally.register_target_type(
    target_type => 'snippet', host_table => 'tally.snippets',
    owner_column => 'owner_id', visibility_column => 'visibility'
);
SELECT tally.register_target_type(
    target_type => 'template', host_table => 'tally.templates',
    owner_column => 'owner_id', visibility_column => 'visibility'
);
SELECT tally.register_target_type(
    target_type => 'document', host_table => 'tally.documents',
    owner_column => 'owner_id', visibility_column => 'visibility'
);
