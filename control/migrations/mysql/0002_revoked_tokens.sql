-- Logged-out tokens until they would have expired: the state store's
-- revocation list is a cache of this (it may lose its data; this does not).
CREATE TABLE revoked_tokens (
  jti VARCHAR(64) NOT NULL PRIMARY KEY,
  expires_at BIGINT NOT NULL,
  INDEX idx_revoked_expiry (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
