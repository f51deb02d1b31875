-- Version 1.1: edits, recalls and delete-for-me; mirrors migrations/mysql.
ALTER TABLE messages ADD COLUMN edited_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN recalled INTEGER NOT NULL DEFAULT 0;

CREATE TABLE hidden_messages (
  user_id INTEGER NOT NULL,
  message_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, message_id)
);
