-- Version 1.1: friends with consent (friend_policy: 0 approve, 1 open,
-- 2 closed; pending requests) and when each user was last seen.
ALTER TABLE users
  ADD COLUMN friend_policy INT NOT NULL DEFAULT 0,
  ADD COLUMN last_seen BIGINT NOT NULL DEFAULT 0;
CREATE TABLE friend_requests (
  id BIGINT NOT NULL AUTO_INCREMENT,
  from_user_id BIGINT NOT NULL,
  to_user_id BIGINT NOT NULL,
  message VARCHAR(255) NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_from_to (from_user_id, to_user_id),
  KEY idx_to (to_user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
