-- Version 1.1: devices registered for offline pushes; mirrors migrations/mysql.
CREATE TABLE devices (
  user_id INTEGER NOT NULL,
  device_id TEXT NOT NULL,
  platform TEXT NOT NULL,
  push_token TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id)
);
