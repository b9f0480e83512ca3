-- Upstream providers and their keys (inference.md §Providers).
-- network_config is JSON text; a key's value is JSON text (a string, or
-- {"env_var": "NAME"}); models is a JSON array. Keys are deleted with their
-- provider by the store code (no reliance on SQLite's foreign_keys pragma).

CREATE TABLE providers (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    network_config TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE provider_keys (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    models TEXT NOT NULL,
    weight REAL NOT NULL,
    enabled INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (provider, name)
);
