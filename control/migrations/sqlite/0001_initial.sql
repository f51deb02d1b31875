-- GoChat schema for SQLite (the embedded default); mirrors migrations/mysql.
-- Times are INTEGER milliseconds since the epoch.

CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT NOT NULL COLLATE NOCASE UNIQUE,
  password_hash TEXT NOT NULL,
  nickname TEXT NOT NULL DEFAULT '',
  avatar_url TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);

CREATE TABLE `groups` (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  owner_id INTEGER NOT NULL,
  avatar_url TEXT NOT NULL DEFAULT '',
  announcement TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE INDEX idx_groups_owner ON `groups` (owner_id);

CREATE TABLE group_members (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  group_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  role INTEGER NOT NULL DEFAULT 1,
  joined_at INTEGER NOT NULL,
  UNIQUE (group_id, user_id)
);
CREATE INDEX idx_group_members_user ON group_members (user_id);

CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  conversation_id TEXT NOT NULL,
  seq_id INTEGER NOT NULL,
  sender_id INTEGER NOT NULL,
  to_user_id INTEGER NOT NULL DEFAULT 0,
  group_id INTEGER NOT NULL DEFAULT 0,
  message_type INTEGER NOT NULL DEFAULT 1,
  content TEXT NOT NULL,
  metadata TEXT NOT NULL,
  mentions TEXT NOT NULL,
  client_msg_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (conversation_id, seq_id),
  UNIQUE (sender_id, client_msg_id)
);
CREATE INDEX idx_messages_conv_time ON messages (conversation_id, created_at);

CREATE TABLE message_mentions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id INTEGER NOT NULL,
  conversation_id TEXT NOT NULL,
  seq_id INTEGER NOT NULL,
  sender_id INTEGER NOT NULL,
  mentioned_user_id INTEGER NOT NULL
);
CREATE INDEX idx_mentions_user ON message_mentions (mentioned_user_id);
CREATE INDEX idx_mentions_conv_user ON message_mentions (conversation_id, mentioned_user_id);

CREATE TABLE conversations (
  conversation_id TEXT PRIMARY KEY,
  kind INTEGER NOT NULL,
  user_low INTEGER NOT NULL DEFAULT 0,
  user_high INTEGER NOT NULL DEFAULT 0,
  group_id INTEGER NOT NULL DEFAULT 0,
  last_seq_id INTEGER NOT NULL DEFAULT 0,
  last_message_id INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL
);

CREATE TABLE user_conversations (
  user_id INTEGER NOT NULL,
  conversation_id TEXT NOT NULL,
  read_seq_id INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, conversation_id)
);
CREATE INDEX idx_user_conversations_conv ON user_conversations (conversation_id);

CREATE TABLE friends (
  user_id INTEGER NOT NULL,
  friend_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, friend_id)
);

CREATE TABLE blocks (
  user_id INTEGER NOT NULL,
  blocked_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, blocked_id)
);
