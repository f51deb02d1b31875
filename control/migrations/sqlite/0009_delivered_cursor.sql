-- Version 1.1: how far a user's devices report holding a conversation
-- (the `delivered` frame); mirrors migrations/mysql.
ALTER TABLE user_conversations ADD COLUMN delivered_seq_id INTEGER NOT NULL DEFAULT 0;
