-- Grantry's schema on PostgreSQL. Times are Unix seconds (BIGINT); sealed values are BYTEA that only
-- the keyring opens; lists of scopes are space-separated, lists of URLs JSON arrays (as TEXT, the
-- same encoding as the SQLite store, so copying between them is byte for byte).

CREATE TABLE profiles (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    description         TEXT NOT NULL,
    provider            TEXT NOT NULL,
    client_id           TEXT NOT NULL,
    client_secret       BYTEA NOT NULL,
    base_url            TEXT,
    required_scopes     TEXT NOT NULL,
    allowed_return_urls TEXT NOT NULL,
    private             BOOLEAN NOT NULL,
    problem             TEXT,
    problem_at          BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

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
    access_token         BYTEA NOT NULL,
    refresh_token        BYTEA,
    expires_at           BIGINT,
    refreshed_at         BIGINT,
    refresh_token_at     BIGINT,
    next_refresh_at      BIGINT,
    failures             BIGINT NOT NULL DEFAULT 0,
    last_error           TEXT,
    version              BIGINT NOT NULL,
    lease_owner          TEXT,
    lease_until          BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    UNIQUE (profile_id, account_key)
);

CREATE INDEX connections_due ON connections (next_refresh_at) WHERE status <> 'needs_reauth';
CREATE INDEX connections_profile ON connections (profile_id, id);
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
    pkce_verifier BYTEA,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    opened_at     BIGINT,
    completed_at  BIGINT
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    digest     TEXT NOT NULL UNIQUE,
    hint       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE admins (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- The audit trail outlives what it talks about: no foreign keys.
CREATE TABLE events (
    id            TEXT PRIMARY KEY,
    at            BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    profile_id    TEXT,
    connection_id TEXT,
    actor         TEXT NOT NULL,
    detail        TEXT NOT NULL
);

CREATE INDEX events_profile ON events (profile_id, id);
CREATE INDEX events_connection ON events (connection_id, id);

CREATE TABLE console_sessions (
    digest       TEXT PRIMARY KEY,
    admin_id     TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    username     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Change notifications, so every node drops what it cached about a row another node changed.
-- Payloads: `connection:<id>:<version>:<status>`, `connection:<id>:deleted`, `api_key:<id>`.
-- Lease changes (lease_owner, lease_until) do not notify: they change nothing a cache holds.

CREATE FUNCTION grantry_connection_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('grantry_changes', 'connection:' || OLD.id || ':deleted');
    ELSE
        PERFORM pg_notify('grantry_changes', 'connection:' || NEW.id || ':' || NEW.version || ':' || NEW.status);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER connections_changed
    AFTER UPDATE OF version, status, end_user_id, access_token, refresh_token OR DELETE ON connections
    FOR EACH ROW EXECUTE FUNCTION grantry_connection_changed();

CREATE FUNCTION grantry_api_key_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('grantry_changes', 'api_key:' || NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER api_keys_changed AFTER UPDATE OF revoked_at ON api_keys
    FOR EACH ROW EXECUTE FUNCTION grantry_api_key_changed();
