-- Search is driven from the caller's conversations: for each one, the
-- entries of one term (a range of this key), then each further term by
-- the primary key (term, message_id). See repo/sql/search.rs.
ALTER TABLE message_terms ADD KEY idx_conversation_term (conversation_id, term, message_id);
-- Device ids compare byte for byte, as on SQLite: "Phone" and "phone" are
-- two devices of a user (case-insensitive ids would merge them here only).
ALTER TABLE devices MODIFY device_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
-- Messages stored before the search index existed are indexed in the
-- background by the repo service, newest first, below `next_below` (0:
-- done). They are the ones older than the oldest indexed message.
CREATE TABLE search_backfill (
  id INT NOT NULL PRIMARY KEY,
  next_below BIGINT NOT NULL
) ENGINE=InnoDB;
INSERT INTO search_backfill (id, next_below)
SELECT 1, COALESCE((SELECT MIN(message_id) FROM message_terms), (SELECT MAX(id) + 1 FROM messages), 0);
