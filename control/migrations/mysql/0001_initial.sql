-- GoChat schema for MySQL 8 / MariaDB 10.6+ (seed 003 §2.1.1 plus what the protocol needs).
-- Times are BIGINT milliseconds since the epoch so both backends store them alike.

CREATE TABLE users (
  id BIGINT NOT NULL AUTO_INCREMENT,
  username VARCHAR(50) NOT NULL,
  password_hash VARCHAR(255) NOT NULL,
  nickname VARCHAR(50) NOT NULL DEFAULT '',
  avatar_url VARCHAR(255) NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `groups` (
  id BIGINT NOT NULL AUTO_INCREMENT,
  name VARCHAR(50) NOT NULL,
  owner_id BIGINT NOT NULL,
  avatar_url VARCHAR(255) NOT NULL DEFAULT '',
  announcement TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (id),
  KEY idx_owner_id (owner_id),
  KEY idx_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- role: 1 member, 2 admin, 3 owner.
CREATE TABLE group_members (
  id BIGINT NOT NULL AUTO_INCREMENT,
  group_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  role INT NOT NULL DEFAULT 1,
  joined_at BIGINT NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_group_user (group_id, user_id),
  KEY idx_user_id (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- id is a snowflake chosen by logic. message_type: 1 text, 2 image, 3 file,
-- 4 location, 100 system_group, 101 system. (sender_id, client_msg_id) is the
-- de-duplication key; (conversation_id, seq_id) forbids seq reuse.
CREATE TABLE messages (
  id BIGINT NOT NULL,
  conversation_id VARCHAR(64) NOT NULL,
  seq_id BIGINT NOT NULL,
  sender_id BIGINT NOT NULL,
  to_user_id BIGINT NOT NULL DEFAULT 0,
  group_id BIGINT NOT NULL DEFAULT 0,
  message_type INT NOT NULL DEFAULT 1,
  content TEXT NOT NULL,
  metadata TEXT NOT NULL,
  mentions TEXT NOT NULL,
  client_msg_id VARCHAR(64) NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_conv_seq (conversation_id, seq_id),
  UNIQUE KEY uk_sender_client_msg (sender_id, client_msg_id),
  KEY idx_conv_id_time (conversation_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- mentioned_user_id 0 stands for @all: one row however large the group.
CREATE TABLE message_mentions (
  id BIGINT NOT NULL AUTO_INCREMENT,
  message_id BIGINT NOT NULL,
  conversation_id VARCHAR(64) NOT NULL,
  seq_id BIGINT NOT NULL,
  sender_id BIGINT NOT NULL,
  mentioned_user_id BIGINT NOT NULL,
  PRIMARY KEY (id),
  KEY idx_user_id (mentioned_user_id),
  KEY idx_conv_user (conversation_id, mentioned_user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- kind: 1 single, 2 group. last_seq_id is the durable seq high-water mark.
CREATE TABLE conversations (
  conversation_id VARCHAR(64) NOT NULL,
  kind INT NOT NULL,
  user_low BIGINT NOT NULL DEFAULT 0,
  user_high BIGINT NOT NULL DEFAULT 0,
  group_id BIGINT NOT NULL DEFAULT 0,
  last_seq_id BIGINT NOT NULL DEFAULT 0,
  last_message_id BIGINT NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (conversation_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per (user, conversation) the user takes part in, with the read cursor.
CREATE TABLE user_conversations (
  user_id BIGINT NOT NULL,
  conversation_id VARCHAR(64) NOT NULL,
  read_seq_id BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, conversation_id),
  KEY idx_conversation (conversation_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE friends (
  user_id BIGINT NOT NULL,
  friend_id BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, friend_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE blocks (
  user_id BIGINT NOT NULL,
  blocked_id BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, blocked_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
