-- Version 1.1: friends with consent and last seen; mirrors migrations/mysql.
ALTER TABLE users ADD COLUMN friend_policy INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
CREATE TABLE friend_requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  from_user_id INTEGER NOT NULL,
  to_user_id INTEGER NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  UNIQUE (from_user_id, to_user_id)
);
CREATE INDEX idx_friend_requests_to ON friend_requests (to_user_id);
