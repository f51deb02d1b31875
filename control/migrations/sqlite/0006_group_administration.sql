-- Version 1.1: group administration; mirrors migrations/mysql.
ALTER TABLE `groups` ADD COLUMN join_policy INTEGER NOT NULL DEFAULT 0;
ALTER TABLE `groups` ADD COLUMN mute_all INTEGER NOT NULL DEFAULT 0;
ALTER TABLE `groups` ADD COLUMN dissolved INTEGER NOT NULL DEFAULT 0;
ALTER TABLE group_members ADD COLUMN muted_until INTEGER NOT NULL DEFAULT 0;
CREATE TABLE group_join_requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  group_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (group_id, user_id)
);
