-- API tokens and access tokens stored before Grantry checked them had no next look. API tokens
-- are checked with Bitbucket at the refresher's next pass; access tokens are looked at when they
-- expire (or never, when they do not).
UPDATE connections
SET next_refresh_at = CASE credential
    WHEN 'api_token' THEN CAST(strftime('%s', 'now') AS INTEGER)
    ELSE expires_at
END
WHERE credential IN ('api_token', 'access_token')
  AND next_refresh_at IS NULL
  AND status <> 'needs_reauth';
