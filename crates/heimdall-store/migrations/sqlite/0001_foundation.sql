-- Foundation schema: settings, roles, access-profile templates with their
-- role attachments, versions and audit log, and the tables that the users
-- issue fills (users, user copies, virtual keys).
-- Conventions shared with the PostgreSQL schema: integers are 64-bit, booleans
-- are 0/1 integers, timestamps are Unix milliseconds (UTC), structured
-- policy is JSON text. Ids are never reused (AUTOINCREMENT).

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sequences (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO sequences (name, value) VALUES ('provider_config', 0);

CREATE TABLE roles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    name_norm TEXT NOT NULL UNIQUE,
    description TEXT,
    is_system_role INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO roles (id, name, name_norm, description, is_system_role, created_at, updated_at) VALUES
    (1, 'Admin', 'admin', 'Full access', 1, 0, 0),
    (2, 'Developer', 'developer', 'Builds with the gateway', 1, 0, 0),
    (3, 'Viewer', 'viewer', 'Read-only access', 1, 0, 0);

CREATE TABLE access_profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    name_norm TEXT NOT NULL UNIQUE,
    description TEXT,
    is_active INTEGER NOT NULL,
    version INTEGER NOT NULL,
    tags TEXT NOT NULL,
    policy TEXT NOT NULL,
    rotation_interval_ns INTEGER NOT NULL,
    next_rotation_at INTEGER,
    last_rotation_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE profile_roles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    access_profile_id INTEGER NOT NULL REFERENCES access_profiles (id) ON DELETE CASCADE,
    role_id INTEGER NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    is_default INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (access_profile_id, role_id)
);

CREATE TABLE profile_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    access_profile_id INTEGER NOT NULL REFERENCES access_profiles (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    snapshot TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (access_profile_id, version)
);

-- Audit entries outlive the profile they describe: no foreign key.
CREATE TABLE audit_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    access_profile_id INTEGER,
    user_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    previous_values TEXT,
    new_values TEXT,
    metadata TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX audit_logs_profile ON audit_logs (access_profile_id, id);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    email_norm TEXT NOT NULL UNIQUE,
    role_id INTEGER REFERENCES roles (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- A user copy of a template. The template cannot be deleted while a copy
-- refers to it (no ON DELETE action: the store answers 409 first).
CREATE TABLE user_profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    parent_profile_id INTEGER NOT NULL REFERENCES access_profiles (id),
    name TEXT NOT NULL,
    is_active INTEGER NOT NULL,
    expires_at INTEGER,
    source TEXT NOT NULL,
    role_id INTEGER,
    assigned_at INTEGER NOT NULL,
    policy TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (user_id, parent_profile_id)
);
CREATE INDEX user_profiles_parent ON user_profiles (parent_profile_id);

CREATE TABLE virtual_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_profile_id INTEGER REFERENCES user_profiles (id) ON DELETE CASCADE,
    access_profile_id INTEGER,
    value_hash TEXT NOT NULL UNIQUE,
    value_last4 TEXT NOT NULL,
    previous_hash TEXT,
    previous_valid_until INTEGER,
    rotated_value_pending TEXT,
    is_active INTEGER NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    rotated_at INTEGER,
    UNIQUE (user_id, name)
);
