-- Grantry's schema. Times are Unix seconds; sealed values are BLOBs that only the keyring opens;
-- lists of scopes are space-separated, lists of URLs JSON arrays.

CREATE TABLE profiles (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    description         TEXT NOT NULL,
    provider            TEXT NOT NULL,
    client_id           TEXT NOT NULL,
    client_secret       BLOB NOT NULL,
    base_url            TEXT,
    required_scopes     TEXT NOT NULL,
    allowed_return_urls TEXT NOT NULL,
    private             INTEGER NOT NULL,
    problem             TEXT,
    problem_at          INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE connections (
    id                   TEXT PRIMARY KEY,
    profile_id           TEXT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    end_user_id          TEXT,
    credential           TEXT NOT NULL,
    account_key          TEXT NOT NULL,
    account_id           TEXT,
    account_username     TEXT,
    account_display_name TEXT,
    login                TEXT,
    status               TEXT NOT NULL,
    status_reason        TEXT,
    granted_scopes       TEXT NOT NULL,
    access_token         BLOB NOT NULL,
    refresh_token        BLOB,
    expires_at           INTEGER,
    refreshed_at         INTEGER,
    refresh_token_at     INTEGER,
    next_refresh_at      INTEGER,
    failures             INTEGER NOT NULL DEFAULT 0,
    last_error           TEXT,
    version              INTEGER NOT NULL,
    lease_owner          TEXT,
    lease_until          INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    UNIQUE (profile_id, account_key)
) STRICT;

CREATE INDEX connections_due ON connections (next_refresh_at) WHERE status <> 'needs_reauth';
CREATE INDEX connections_end_user ON connections (end_user_id, id);
CREATE INDEX connections_status ON connections (status, id);

CREATE TABLE connect_sessions (
    id            TEXT PRIMARY KEY,
    token_digest  TEXT NOT NULL UNIQUE,
    profile_id    TEXT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    end_user_id   TEXT,
    return_url    TEXT NOT NULL,
    connection_id TEXT,
    state_digest  TEXT UNIQUE,
    pkce_verifier BLOB,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    opened_at     INTEGER,
    completed_at  INTEGER
) STRICT;

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    digest     TEXT NOT NULL UNIQUE,
    hint       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE TABLE admins (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

-- The audit trail outlives what it talks about: no foreign keys.
CREATE TABLE events (
    id            TEXT PRIMARY KEY,
    at            INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    profile_id    TEXT,
    connection_id TEXT,
    actor         TEXT NOT NULL,
    detail        TEXT NOT NULL
) STRICT;

CREATE INDEX events_profile ON events (profile_id, id);
CREATE INDEX events_connection ON events (connection_id, id);
