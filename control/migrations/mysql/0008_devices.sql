-- Version 1.1: devices registered for offline pushes (POST /devices).
-- platform: apns, fcm or webhook; push_token as the platform gave it.
CREATE TABLE devices (
  user_id BIGINT NOT NULL,
  device_id VARCHAR(64) NOT NULL,
  platform VARCHAR(16) NOT NULL,
  push_token VARCHAR(4096) NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, device_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
