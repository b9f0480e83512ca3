-- Usage counters of user copies' budgets and rate-limit halves, keyed by the
-- limit's id and the counter kind ('budget', 'tokens', 'requests'). The
-- gateway counts in memory and flushes here; a row whose anchor or duration
-- no longer matches the copy's policy is a stale counter and starts at zero.
CREATE TABLE usage_counters (
    limit_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    user_profile_id INTEGER NOT NULL REFERENCES user_profiles (id) ON DELETE CASCADE,
    used INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    reset_duration TEXT NOT NULL,
    anchor INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (limit_id, kind)
);
CREATE INDEX usage_counters_copy ON usage_counters (user_profile_id);
