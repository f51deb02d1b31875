-- Logged-out tokens until they would have expired: the state store's
-- revocation list is a cache of this (it may lose its data; this does not).
CREATE TABLE revoked_tokens (
  jti TEXT NOT NULL PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
CREATE INDEX idx_revoked_expiry ON revoked_tokens (expires_at);
