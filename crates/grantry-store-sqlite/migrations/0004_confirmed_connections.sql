-- Connect flows bound to the browser that opened the link and confirmed by the application;
-- a Bitbucket account connected for two end users is two connections.

-- The digest of the nonce the connect link set in the browser, checked at the callback; the
-- credential a callback obtained, sealed, until the application confirms it with the one-time
-- verification code (its digest here) before `confirm_by`.
ALTER TABLE connect_sessions ADD COLUMN browser_digest TEXT;
ALTER TABLE connect_sessions ADD COLUMN verification_digest TEXT;
ALTER TABLE connect_sessions ADD COLUMN pending_grant BLOB;
ALTER TABLE connect_sessions ADD COLUMN confirm_by INTEGER;
ALTER TABLE connect_sessions ADD COLUMN confirmed_at INTEGER;

-- Whether connections of this profile wait for the application's confirmation.
ALTER TABLE profiles ADD COLUMN confirm_connections INTEGER NOT NULL DEFAULT 1;

-- One connection per profile, end user and account (was: per profile and account, so a second
-- end user's authorization moved the first one's connection). SQLite drops a table constraint
-- only by rebuilding the table.
CREATE TABLE connections_new (
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
    updated_at           INTEGER NOT NULL
) STRICT;

INSERT INTO connections_new (id, profile_id, end_user_id, credential, account_key, account_id,
    account_username, account_display_name, login, status, status_reason, granted_scopes,
    access_token, refresh_token, expires_at, refreshed_at, refresh_token_at, next_refresh_at,
    failures, last_error, version, lease_owner, lease_until, created_at, updated_at)
SELECT id, profile_id, end_user_id, credential, account_key, account_id,
    account_username, account_display_name, login, status, status_reason, granted_scopes,
    access_token, refresh_token, expires_at, refreshed_at, refresh_token_at, next_refresh_at,
    failures, last_error, version, lease_owner, lease_until, created_at, updated_at
FROM connections;

DROP TABLE connections;
ALTER TABLE connections_new RENAME TO connections;

CREATE UNIQUE INDEX connections_account ON connections (profile_id, COALESCE(end_user_id, ''), account_key);
CREATE INDEX connections_due ON connections (next_refresh_at) WHERE status <> 'needs_reauth';
CREATE INDEX connections_end_user ON connections (end_user_id, id);
CREATE INDEX connections_status ON connections (status, id);
CREATE INDEX connections_leased ON connections (lease_until) WHERE lease_owner IS NOT NULL;
