-- Every column a user may read or a DBA may change says what it holds (docs/sql-api.md is generated
-- from these; tests/surface/test_docs.py fails on a column without one).

COMMENT ON COLUMN tally.bot_patterns.pattern IS
'Case-insensitive regular expression (~*) matched against cleaned user agents; a match makes log_event return '
'discarded_bot.';
COMMENT ON COLUMN tally.bot_patterns.note IS 'Why the pattern is here (free text).';

COMMENT ON COLUMN tally.daily_counts.day IS 'UTC day of the events (events.created_at).';
COMMENT ON COLUMN tally.daily_counts.target_type IS 'Registered target type (tally.target_types).';
COMMENT ON COLUMN tally.daily_counts.target_id IS 'The host row''s key, as canonical text.';
COMMENT ON COLUMN tally.daily_counts.kind IS 'Event kind (tally.kinds).';
COMMENT ON COLUMN tally.daily_counts.count IS 'Events of this kind on this target that day, rolled up.';

COMMENT ON COLUMN tally.debounce.key IS
'md5 of (target_type, target_id, kind, visitor key) as a uuid: one debounce slot.';
COMMENT ON COLUMN tally.debounce.last_at IS
'When the slot last admitted an event; another counts only once the kind''s window has passed.';

COMMENT ON COLUMN tally.discards.day IS 'UTC day of the calls.';
COMMENT ON COLUMN tally.discards.target_type IS 'Target type the calls named.';
COMMENT ON COLUMN tally.discards.kind IS 'Event kind the calls named.';
COMMENT ON COLUMN tally.discards.reason IS 'The outcome: any tally.outcome but logged.';
COMMENT ON COLUMN tally.discards.shard IS
'Backend pid that counted them (no waits between backends); 0 once housekeeping has folded a past day.';
COMMENT ON COLUMN tally.discards.count IS 'Calls with this outcome.';

COMMENT ON COLUMN tally.event_ids.event_id IS 'A caller-chosen idempotency key already logged.';
COMMENT ON COLUMN tally.event_ids.seen_at IS 'When it was logged; forgotten after settings.event_id_ttl.';

COMMENT ON COLUMN tally.events.id IS 'Identity, in insertion order within a backend (not a commit order).';
COMMENT ON COLUMN tally.events.created_at IS
'When log_event was called (its transaction''s start, or tally.clock when clock_override is on); the partition key.';
COMMENT ON COLUMN tally.events.target_type IS 'Registered target type (tally.target_types).';
COMMENT ON COLUMN tally.events.target_id IS 'The host row''s key, as canonical text (made so by the admit_event trigger).';
COMMENT ON COLUMN tally.events.kind IS 'Event kind (tally.kinds).';

COMMENT ON COLUMN tally.kinds.kind IS 'The event kind as log_event accepts it.';

COMMENT ON COLUMN tally.rate_limit_rejections.window_start IS 'Start of the fixed rate-limit window.';
COMMENT ON COLUMN tally.rate_limit_rejections.kind IS 'Event kind whose limit was reached.';
COMMENT ON COLUMN tally.rate_limit_rejections.rejected IS 'Calls that returned rate_limited.';

COMMENT ON COLUMN tally.rate_limit_state.key IS 'md5 of (ip:BUCKET or user:ID, kind) as a uuid.';
COMMENT ON COLUMN tally.rate_limit_state.window_start IS 'Start of the fixed window.';
COMMENT ON COLUMN tally.rate_limit_state.hits IS 'Calls counted in the window, rejected ones included.';

COMMENT ON COLUMN tally.rollup_runs.id IS 'Run number.';
COMMENT ON COLUMN tally.rollup_runs.started_at IS 'When the run started.';
COMMENT ON COLUMN tally.rollup_runs.finished_at IS 'When it committed, was skipped or failed.';
COMMENT ON COLUMN tally.rollup_runs.status IS 'ok, skipped (another rollup held the lock) or failed.';
COMMENT ON COLUMN tally.rollup_runs.events IS 'Events rolled up by this run.';
COMMENT ON COLUMN tally.rollup_runs.entities IS 'Targets whose host counters changed (cache tags notified).';
COMMENT ON COLUMN tally.rollup_runs.from_txid IS 'Lowest transaction id the batch could hold (previous snapshot''s xmin).';
COMMENT ON COLUMN tally.rollup_runs.to_txid IS 'Transaction ids from here on were not committed at the run (snapshot xmax).';
COMMENT ON COLUMN tally.rollup_runs.error IS 'SQLSTATE and message of a failed run.';

COMMENT ON COLUMN tally.rollup_state.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN tally.rollup_state.last_run_at IS 'When the last successful rollup committed.';

COMMENT ON COLUMN tally.settings.singleton IS 'Always true: the table has one row.';

COMMENT ON COLUMN tally.target_types.target_type IS 'The name log_event takes (lower case, up to 40 characters).';
COMMENT ON COLUMN tally.target_types.host_table IS 'The application''s table holding the targets and their counters.';
COMMENT ON COLUMN tally.target_types.key_column IS 'Its unique key column: log_event''s target_id.';
COMMENT ON COLUMN tally.target_types.slug_column IS 'Its column used in cache tags and trending lists.';
COMMENT ON COLUMN tally.target_types.owner_column IS 'Its column holding the owner''s user id (for owner-only rows).';
COMMENT ON COLUMN tally.target_types.visible_values IS 'visibility_column values visible to everybody.';
COMMENT ON COLUMN tally.target_types.listed_values IS 'visibility_column values that may appear in trending lists.';
COMMENT ON COLUMN tally.target_types.owner_only_values IS 'visibility_column values visible to the owner only.';

COMMENT ON COLUMN tally.trending_scores.period IS 'Window length in UTC days: 7 or 30 (today included).';
COMMENT ON COLUMN tally.trending_scores.target_type IS 'Registered target type.';
COMMENT ON COLUMN tally.trending_scores.target_id IS 'The host row''s key, as canonical text.';

COMMENT ON COLUMN tally.trending_state.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN tally.trending_state.epoch IS 'The landmark day scores are forward-decayed from.';
COMMENT ON COLUMN tally.trending_state.day IS 'The last day of the windows the scores hold (UTC).';
COMMENT ON COLUMN tally.trending_state.half_life IS 'settings.trending_half_life the scores were computed with.';
COMMENT ON COLUMN tally.trending_state.weights IS 'The kind weights the scores were computed with.';

COMMENT ON COLUMN tally.trending_top.period IS 'Window length in UTC days: 7 or 30.';
COMMENT ON COLUMN tally.trending_top.target_type IS 'Registered target type.';
COMMENT ON COLUMN tally.trending_top.target_id IS 'The host row''s key, as canonical text.';
COMMENT ON COLUMN tally.trending_top.rank IS 'trending_scores.rank of the row (copied; the index orders by it).';

COMMENT ON COLUMN tally.user_agents.id IS 'Referenced by events.user_agent_id.';
COMMENT ON COLUMN tally.user_agents.hash IS 'md5 of the cleaned user agent as a uuid: the lookup key.';
COMMENT ON COLUMN tally.user_agents.is_bot IS 'Whether a bot_patterns entry matches (kept current by a trigger).';
COMMENT ON COLUMN tally.user_agents.last_used IS 'Last UTC day an event used it; drives its deletion.';

COMMENT ON COLUMN tally.snippets.id IS 'Key: log_event''s target_id for target type snippet.';
COMMENT ON COLUMN tally.snippets.slug IS 'Public name, used in cache tags (snippet:SLUG) and trending lists.';
COMMENT ON COLUMN tally.snippets.owner_id IS 'The owner''s user id: who sees the row when it is private.';
COMMENT ON COLUMN tally.snippets.visibility IS 'public (listed), unlisted (countable, not listed) or private (owner only).';
COMMENT ON COLUMN tally.snippets.views IS 'Views counted so far (added by each rollup).';
COMMENT ON COLUMN tally.snippets.copies IS 'Copies counted so far (added by each rollup).';
COMMENT ON COLUMN tally.snippets.downloads IS 'Downloads counted so far (added by each rollup).';
COMMENT ON COLUMN tally.snippets.uses IS 'Template uses and builder exports counted so far (added by each rollup).';
COMMENT ON COLUMN tally.snippets.favorites_count IS 'Application-owned counter (not written by pgtally).';
COMMENT ON COLUMN tally.snippets.comments_count IS 'Application-owned counter (not written by pgtally).';
COMMENT ON COLUMN tally.snippets.votes_up IS 'Application-owned counter (not written by pgtally).';
COMMENT ON COLUMN tally.snippets.votes_down IS 'Application-owned counter (not written by pgtally).';
COMMENT ON COLUMN tally.snippets.counters_refreshed_at IS 'When a rollup last changed this row''s counters.';

COMMENT ON COLUMN tally.templates.id IS 'Key: log_event''s target_id for target type template.';
COMMENT ON COLUMN tally.templates.slug IS 'Public name, used in cache tags (template:SLUG) and trending lists.';
COMMENT ON COLUMN tally.templates.owner_id IS 'The owner''s user id: who sees the row when it is private.';
COMMENT ON COLUMN tally.templates.visibility IS 'public (listed), unlisted (countable, not listed) or private (owner only).';
COMMENT ON COLUMN tally.templates.views IS 'Views counted so far (added by each rollup).';
COMMENT ON COLUMN tally.templates.copies IS 'Copies counted so far (added by each rollup).';
COMMENT ON COLUMN tally.templates.downloads IS 'Downloads counted so far (added by each rollup).';
COMMENT ON COLUMN tally.templates.uses IS 'Template uses and builder exports counted so far (added by each rollup).';
COMMENT ON COLUMN tally.templates.favorites_count IS 'Application-owned counter (not written by pgtally).';
COMMENT ON COLUMN tally.templates.comments_count IS 'Application-owned counter (not written by pgtally).';
COMMENT ON COLUMN tally.templates.votes_up IS 'Application-owned counter (not written by pgtally).';
COMMENT ON COLUMN tally.templates.votes_down IS 'Application-owned counter (not written by pgtally).';
COMMENT ON COLUMN tally.templates.counters_refreshed_at IS 'When a rollup last changed this row''s counters.';

COMMENT ON COLUMN tally.documents.id IS 'Key: log_event''s target_id for target type document.';
COMMENT ON COLUMN tally.documents.slug IS 'Public name, used in cache tags (document:SLUG) and trending lists.';
COMMENT ON COLUMN tally.documents.owner_id IS 'The owner''s user id: who sees the row when it is private.';
COMMENT ON COLUMN tally.documents.visibility IS 'public (listed), unlisted (countable, not listed) or private (owner only).';
COMMENT ON COLUMN tally.documents.views IS 'Views counted so far (added by each rollup).';
COMMENT ON COLUMN tally.documents.copies IS 'Copies counted so far (added by each rollup).';
COMMENT ON COLUMN tally.documents.downloads IS 'Downloads counted so far (added by each rollup).';
COMMENT ON COLUMN tally.documents.uses IS 'Template uses and builder exports counted so far (added by each rollup).';
COMMENT ON COLUMN tally.documents.favorites_count IS 'Application-owned counter (not written by pgtally).';
COMMENT ON COLUMN tally.documents.comments_count IS 'Application-owned counter (not written by pgtally).';
COMMENT ON COLUMN tally.documents.votes_up IS 'Application-owned counter (not written by pgtally).';
COMMENT ON COLUMN tally.documents.votes_down IS 'Application-owned counter (not written by pgtally).';
COMMENT ON COLUMN tally.documents.counters_refreshed_at IS 'When a rollup last changed this row''s counters.';
