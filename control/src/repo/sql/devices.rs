//! Devices registered for offline pushes (PROTOCOL v1.1 `POST /devices`):
//! one row per (user, device), replaced when the device registers again
//! (a new push token after a reinstall).

use gochat_proto::ids::now_millis;

use super::{SqlRepo, get, get_text, map_err};
use crate::repo::{Device, RepoResult};

impl SqlRepo {
    /// Registers the device, replacing an earlier registration.
    pub(super) async fn store_device(&self, device: &Device) -> RepoResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Its earlier registration, and anyone else's of the same token: a
        // phone that changed hands pushes to its new user only.
        sqlx::query(
            "DELETE FROM devices WHERE (user_id = ? AND device_id = ?) OR (push_token = ? AND user_id <> ?)",
        )
        .bind(device.user_id)
        .bind(device.device_id.clone())
        .bind(device.push_token.clone())
        .bind(device.user_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO devices (user_id, device_id, platform, push_token, updated_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(device.user_id)
        .bind(device.device_id.clone())
        .bind(device.platform.clone())
        .bind(device.push_token.clone())
        .bind(now_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    /// Forgets a device; false if it was not registered.
    pub(super) async fn drop_device(&self, user_id: i64, device_id: &str) -> RepoResult<bool> {
        let removed = sqlx::query("DELETE FROM devices WHERE user_id = ? AND device_id = ?")
            .bind(user_id)
            .bind(device_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(removed > 0)
    }

    /// A user's devices, by device id.
    pub(super) async fn devices_of(&self, user_id: i64) -> RepoResult<Vec<Device>> {
        sqlx::query(
            "SELECT user_id, device_id, platform, push_token, updated_at FROM devices \
             WHERE user_id = ? ORDER BY device_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(|row| {
            Ok(Device {
                user_id: get(row, "user_id")?,
                device_id: get_text(row, "device_id")?,
                platform: get_text(row, "platform")?,
                push_token: get_text(row, "push_token")?,
                updated_at: get(row, "updated_at")?,
            })
        })
        .collect()
    }
}
