//! Devices registered for offline pushes (PROTOCOL v1.1 `POST /devices`):
//! what a registration may say. The pushes themselves go out per device in
//! the task service.

use gochat_proto::ids::Id;

use super::{Logic, LogicError, LogicResult};
use crate::repo::Device;

/// Push platforms a device may register with.
pub const PLATFORMS: [&str; 3] = ["apns", "fcm", "webhook"];
const MAX_DEVICE_ID: usize = 64;
const MAX_PUSH_TOKEN: usize = 4096;

fn bad(message: &str) -> LogicError {
    LogicError::BadRequest(message.to_owned())
}

impl Logic {
    /// Registers (or re-registers, with a new token) one of the caller's devices.
    pub async fn register_device(
        &self,
        me: Id,
        device_id: &str,
        platform: &str,
        push_token: &str,
    ) -> LogicResult<Device> {
        if device_id.is_empty()
            || device_id.chars().count() > MAX_DEVICE_ID
            || device_id.chars().any(char::is_control)
        {
            return Err(bad("device_id: 1 to 64 characters, no control characters"));
        }
        if !PLATFORMS.contains(&platform) {
            return Err(bad("platform: \"apns\", \"fcm\" or \"webhook\""));
        }
        if push_token.is_empty() || push_token.len() > MAX_PUSH_TOKEN {
            return Err(bad("push_token: 1 to 4096 bytes"));
        }
        let device = Device {
            user_id: me.0,
            device_id: device_id.to_owned(),
            platform: platform.to_owned(),
            push_token: push_token.to_owned(),
            updated_at: gochat_proto::ids::now_millis(),
        };
        self.repo.save_device(&device).await?;
        Ok(device)
    }

    /// Forgets one of the caller's devices: no more pushes to it.
    pub async fn remove_device(&self, me: Id, device_id: &str) -> LogicResult<()> {
        if self.repo.remove_device(me.0, device_id).await? {
            Ok(())
        } else {
            Err(LogicError::NotFound(format!(
                "device {device_id} not registered"
            )))
        }
    }
}
