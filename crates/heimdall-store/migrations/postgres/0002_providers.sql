-- Upstream providers and their keys (inference.md §Providers).
-- network_config is JSON text; a key's value is JSON text (a string, or
-- {"env_var": "NAME"}); models is a JSON array. Same shape as the SQLite schema.

CREATE TABLE providers (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    network_config TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE provider_keys (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    models TEXT NOT NULL,
    weight DOUBLE PRECISION NOT NULL,
    enabled BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (provider, name)
);
