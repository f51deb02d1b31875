-- Version 1.1: the message search index (GET /search/messages). Each text
-- message's words (lower-cased) and, for CJK text, its character bigrams,
-- as MySQL's ngram parser would cut them. A table of our own rather than a
-- FULLTEXT index: MariaDB has no ngram parser, and one index behaves the
-- same on MySQL, MariaDB and SQLite. The terms compare byte for byte.
CREATE TABLE message_terms (
  term VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  message_id BIGINT NOT NULL,
  conversation_id VARCHAR(64) NOT NULL,
  PRIMARY KEY (term, message_id),
  KEY idx_message (message_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
