-- Version 1.1: the message search index; mirrors migrations/mysql.
CREATE TABLE message_terms (
  term TEXT NOT NULL,
  message_id INTEGER NOT NULL,
  conversation_id TEXT NOT NULL,
  PRIMARY KEY (term, message_id)
);
CREATE INDEX idx_message_terms_message ON message_terms (message_id);
