-- Version 1.1: how far any of a user's devices reports holding a
-- conversation (the `delivered` frame); pending pushes up to it are dropped.
ALTER TABLE user_conversations ADD COLUMN delivered_seq_id BIGINT NOT NULL DEFAULT 0;
