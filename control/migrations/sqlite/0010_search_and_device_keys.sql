-- Mirrors migrations/mysql: search is driven from the caller's
-- conversations (SQLite compares device ids byte for byte already).
CREATE INDEX idx_message_terms_conversation_term ON message_terms (conversation_id, term, message_id);
CREATE TABLE search_backfill (
  id INTEGER NOT NULL PRIMARY KEY,
  next_below INTEGER NOT NULL
);
INSERT INTO search_backfill (id, next_below)
SELECT 1, COALESCE((SELECT MIN(message_id) FROM message_terms), (SELECT MAX(id) + 1 FROM messages), 0);
