-- Version 1.1: per-user conversation settings (PUT /conversations/{cid}/settings).
ALTER TABLE user_conversations
  ADD COLUMN muted INT NOT NULL DEFAULT 0,
  ADD COLUMN pinned INT NOT NULL DEFAULT 0,
  ADD COLUMN archived INT NOT NULL DEFAULT 0;
