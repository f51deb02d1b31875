-- Search moves onto InnoDB's FULLTEXT index: one document per text
-- message, its terms (words, CJK character pairs) cut by the repo and
-- written as 16-hex-digit tokens, which the built-in parser keeps whole on
-- MySQL and MariaDB alike (MariaDB has no ngram parser; InnoDB's default
-- parser drops two-character pairs and stop words). See repo/sql/search.rs.
-- A repo process older than this migration fails to store until it is
-- replaced (its term table is gone); the send pipeline retries meanwhile.
DROP TABLE message_terms;
CREATE TABLE message_search (
  message_id BIGINT NOT NULL PRIMARY KEY,
  conversation_id VARCHAR(64) NOT NULL,
  terms MEDIUMTEXT CHARACTER SET ascii NOT NULL,
  FULLTEXT KEY ft_message_search_terms (terms)
) ENGINE=InnoDB;
-- Every message stored so far is indexed again by the background backfill.
UPDATE search_backfill SET next_below = COALESCE((SELECT MAX(id) + 1 FROM messages), 0) WHERE id = 1;
