-- Version 1.1: group administration. join_policy: 0 approval (the default:
-- before, anyone could join any group and read its history), 1 open,
-- 2 invite_only. A dissolved group keeps its rows so former members can
-- still read its history. muted_until is ms; 0 = not muted.
ALTER TABLE `groups`
  ADD COLUMN join_policy INT NOT NULL DEFAULT 0,
  ADD COLUMN mute_all INT NOT NULL DEFAULT 0,
  ADD COLUMN dissolved INT NOT NULL DEFAULT 0;
ALTER TABLE group_members ADD COLUMN muted_until BIGINT NOT NULL DEFAULT 0;
CREATE TABLE group_join_requests (
  id BIGINT NOT NULL AUTO_INCREMENT,
  group_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_group_user (group_id, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
