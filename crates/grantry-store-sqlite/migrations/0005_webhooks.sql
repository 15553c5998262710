-- Webhooks: endpoints that hear about connections' and profiles' lives, and the outbox of
-- messages to deliver to them. A message is written in the same transaction as the change it
-- reports, one row per endpoint that wants it.

CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL,
    -- `,kind,kind,` (each wrapped in commas, so one LIKE finds one), or '' for every kind.
    kinds           TEXT NOT NULL,
    -- `,prf_…,`, or '' for every profile.
    profiles        TEXT NOT NULL,
    enabled         INTEGER NOT NULL,
    -- Sealed at (webhooks, secret, id); the previous one signs beside it until previous_until.
    secret          BLOB NOT NULL,
    previous_secret BLOB,
    previous_until  INTEGER,
    disabled_reason TEXT,
    -- When deliveries began failing without a success since; NULL while they succeed.
    failing_since   INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries (
    -- The order messages were written in: each endpoint gets one connection's in this order.
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The event's id, sent as `webhook-id`: the same on every attempt, so receivers can dedupe.
    event_id        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    -- Messages with the same key reach an endpoint in order: the connection's (or profile's) id.
    ordering_key    TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    -- pending, delivered or failed
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    last_latency_ms INTEGER,
    finished_at     INTEGER,
    UNIQUE (webhook_id, event_id)
) STRICT;

-- Claims walk the pending messages in the order they were written, however many finished ones
-- the table keeps.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (seq) WHERE state = 'pending';
-- Finished messages are purged after a while.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE state <> 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (webhook_id, ordering_key, seq)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (webhook_id, seq);

-- When `connection.credential_expiring` was sent for the connection's current credential; cleared
-- when the credential is replaced or renewed, so each credential is warned about once.
ALTER TABLE connections ADD COLUMN expiry_warned_at INTEGER;
CREATE INDEX connections_expiring ON connections (expires_at)
    WHERE expiry_warned_at IS NULL AND credential IN ('api_token', 'access_token');
