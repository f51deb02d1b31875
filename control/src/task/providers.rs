//! Offline push providers: where an `offline_push` task ends up. A deployment
//! plugs in APNs/FCM/vendor channels by implementing [`PushProvider`]; shipped
//! are [`WebhookProvider`] (POSTs the payload as JSON to a URL) and
//! [`LogProvider`] (writes it to the log, the default).

use std::time::Duration;

use async_trait::async_trait;
use gochat_proto::kafka::OfflinePush;

use super::TaskError;

/// Delivers one notification to a user's devices.
#[async_trait]
pub trait PushProvider: Send + Sync + 'static {
    /// Sends it; an error makes the task retry (then dead-letter).
    async fn push(&self, push: &OfflinePush) -> Result<(), TaskError>;
}

/// Logs each push.
pub struct LogProvider;

#[async_trait]
impl PushProvider for LogProvider {
    async fn push(&self, push: &OfflinePush) -> Result<(), TaskError> {
        tracing::info!(user = %push.user_id, message = %push.message_id, kind = %push.push_type, title = %push.title, "offline push");
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
    async fn push(&self, push: &OfflinePush) -> Result<(), TaskError> {
        let response = self
            .client
            .post(&self.url)
            .json(push)
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
