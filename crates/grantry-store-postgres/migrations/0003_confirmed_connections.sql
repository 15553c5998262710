-- Connect flows bound to the browser that opened the link and confirmed by the application;
-- a Bitbucket account connected for two end users is two connections.

-- The digest of the nonce the connect link set in the browser, checked at the callback; the
-- credential a callback obtained, sealed, until the application confirms it with the one-time
-- verification code (its digest here) before `confirm_by`.
ALTER TABLE connect_sessions
    ADD COLUMN browser_digest TEXT,
    ADD COLUMN verification_digest TEXT,
    ADD COLUMN pending_grant BYTEA,
    ADD COLUMN confirm_by BIGINT,
    ADD COLUMN confirmed_at BIGINT;

-- Whether connections of this profile wait for the application's confirmation.
ALTER TABLE profiles ADD COLUMN confirm_connections BOOLEAN NOT NULL DEFAULT TRUE;

-- One connection per profile, end user and account (was: per profile and account, so a second
-- end user's authorization moved the first one's connection).
ALTER TABLE connections DROP CONSTRAINT connections_profile_id_account_key_key;
CREATE UNIQUE INDEX connections_account ON connections (profile_id, COALESCE(end_user_id, ''), account_key);

-- Profiles are cached by the nodes too (the proxy reads one on every call): announce changes.
CREATE FUNCTION grantry_profile_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('grantry_changes', 'profile:' || COALESCE(NEW.id, OLD.id));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER profiles_changed AFTER UPDATE OR DELETE ON profiles
    FOR EACH ROW EXECUTE FUNCTION grantry_profile_changed();
