-- Version 1.1: edits, recalls and delete-for-me. An edit or a recall is
-- stored as a message of its own (types 10 and 11) and, in the same
-- transaction, changes its target here; a delete-for-me hides one message
-- from one user's history.
ALTER TABLE messages
  ADD COLUMN edited_at BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN recalled INT NOT NULL DEFAULT 0;

CREATE TABLE hidden_messages (
  user_id BIGINT NOT NULL,
  message_id BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, message_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
