-- Version 1.1: per-user conversation settings; mirrors migrations/mysql.
ALTER TABLE user_conversations ADD COLUMN muted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_conversations ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
