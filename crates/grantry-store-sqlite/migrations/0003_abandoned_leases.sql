-- A lease that ran out without being released belongs to a node that died mid-refresh: the
-- refresher claims such rows at once (the refresh token they hold may have been presented to
-- Bitbucket, and only its grace period is left). This index finds them.
CREATE INDEX connections_leased ON connections (lease_until) WHERE lease_owner IS NOT NULL;
