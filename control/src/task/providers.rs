//! Offline push providers: where an `offline_push` task ends up, once per
//! registered device. A deployment plugs in APNs/FCM/vendor channels by
//! implementing [`PushProvider`]; shipped are [`WebhookProvider`] (POSTs the
//! payload, with the device's platform and push token, as JSON to a URL)
//! and [`LogProvider`] (writes it to the log, the default).

use std::time::Duration;

use async_trait::async_trait;
use gochat_proto::kafka::OfflinePush;
use serde::Serialize;

use crate::repo::Device;

use super::TaskError;

/// One notification for one device (or, for a user who registered no
/// device, for the user): the push's fields, plus the device's.
#[derive(Debug, Serialize)]
pub struct Delivery<'a> {
    /// What to show.
    #[serde(flatten)]
    pub push: &'a OfflinePush,
    /// The device it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<&'a str>,
    /// `apns`, `fcm` or `webhook`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<&'a str>,
    /// The token the device registered, as it gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_token: Option<&'a str>,
}

impl<'a> Delivery<'a> {
    /// For a user with no registered device.
    pub fn to_user(push: &'a OfflinePush) -> Self {
        Self {
            push,
            device_id: None,
            platform: None,
            push_token: None,
        }
    }

    /// For one registered device.
    pub fn to_device(push: &'a OfflinePush, device: &'a Device) -> Self {
        Self {
            push,
            device_id: Some(&device.device_id),
            platform: Some(&device.platform),
            push_token: Some(&device.push_token),
        }
    }
}

/// Delivers one notification to a device.
#[async_trait]
pub trait PushProvider: Send + Sync + 'static {
    /// Sends it; an error makes the task retry (then dead-letter).
    async fn push(&self, delivery: &Delivery<'_>) -> Result<(), TaskError>;
}

/// Logs each push.
pub struct LogProvider;

#[async_trait]
impl PushProvider for LogProvider {
    async fn push(&self, delivery: &Delivery<'_>) -> Result<(), TaskError> {
        let push = delivery.push;
        tracing::info!(user = %push.user_id, device = delivery.device_id.unwrap_or("-"), message = %push.message_id, kind = %push.push_type, title = %push.title, "offline push");
        Ok(())
    }
}

/// POSTs each push as JSON; any non-2xx answer is a failure.
pub struct WebhookProvider {
    client: reqwest::Client,
    url: String,
}

impl WebhookProvider {
    /// A provider posting to `url`.
    pub fn new(url: impl Into<String>) -> Result<Self, TaskError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| TaskError::Push(Box::new(e)))?;
        Ok(Self {
            client,
            url: url.into(),
        })
    }
}

#[async_trait]
impl PushProvider for WebhookProvider {
    async fn push(&self, delivery: &Delivery<'_>) -> Result<(), TaskError> {
        let response = self
            .client
            .post(&self.url)
            .json(delivery)
            .send()
            .await
            .map_err(|e| TaskError::Push(Box::new(e)))?;
        if !response.status().is_success() {
            return Err(TaskError::Push(
                format!("webhook answered {}", response.status()).into(),
            ));
        }
        Ok(())
    }
}
