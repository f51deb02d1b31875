//! Offline push providers: where an `offline_push` task ends up, once per
//! registered device. [`Providers`] picks by the device's platform: APNs
//! and FCM when configured ([`apns`], [`fcm`], over [`https`]), otherwise
//! the [`WebhookProvider`] (POSTs the payload, with the device's platform
//! and push token, as JSON to a URL) or the [`LogProvider`] (the default).
//! Other channels plug in by implementing [`PushProvider`].

pub mod apns;
pub mod fcm;
pub mod https;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gochat_proto::kafka::OfflinePush;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Uri};
use serde::Serialize;

use crate::config::TaskConfig;
use crate::repo::Device;

use super::TaskError;
use apns::ApnsProvider;
use fcm::FcmProvider;
use https::HttpsClient;

/// How long one exchange with a push service may take.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

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

/// What became of a push the provider answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Accepted.
    Sent,
    /// The service will never accept this device's token again (the app
    /// was removed, the token rotated or belongs elsewhere): the device's
    /// registration should go.
    TokenRejected,
}

/// Delivers one notification to a device.
#[async_trait]
pub trait PushProvider: Send + Sync + 'static {
    /// Sends it; an error makes the task retry (then dead-letter).
    async fn push(&self, delivery: &Delivery<'_>) -> Result<Pushed, TaskError>;
}

/// A provider failure described in words.
pub(crate) fn push_error(message: String) -> TaskError {
    TaskError::Push(message.into())
}

/// Picks the provider for each delivery by the device's platform.
pub struct Providers {
    apns: Option<ApnsProvider>,
    fcm: Option<FcmProvider>,
    /// Users without devices, `webhook` devices, and platforms without a provider.
    fallback: Box<dyn PushProvider>,
}

impl Providers {
    /// Sets up what `config` names; a key that cannot be read or parsed
    /// stops the start rather than failing every push later.
    pub fn from_config(config: &TaskConfig) -> Result<Self, TaskError> {
        let http = if config.webhook_url.is_some() || config.apns.is_some() || config.fcm.is_some()
        {
            let plain_webhook_only = config.apns.is_none()
                && config.fcm.is_none()
                && config
                    .webhook_url
                    .as_deref()
                    .is_some_and(|url| url.starts_with("http://"));
            Some(HttpsClient::new(
                config.push_ca_file.as_deref(),
                PUSH_TIMEOUT,
                !plain_webhook_only,
            )?)
        } else {
            None
        };
        let fallback: Box<dyn PushProvider> = match (&config.webhook_url, &http) {
            (Some(url), Some(http)) => Box::new(WebhookProvider::new(url, http.clone())?),
            _ => Box::new(LogProvider),
        };
        let apns = match (&config.apns, &http) {
            (Some(apns), Some(http)) => Some(ApnsProvider::new(apns, http.clone())?),
            _ => None,
        };
        let fcm = match (&config.fcm, &http) {
            (Some(fcm), Some(http)) => Some(FcmProvider::new(fcm, http.clone())?),
            _ => None,
        };
        Ok(Self {
            apns,
            fcm,
            fallback,
        })
    }
}

#[async_trait]
impl PushProvider for Providers {
    async fn push(&self, delivery: &Delivery<'_>) -> Result<Pushed, TaskError> {
        let (provider, result) = match (
            delivery.platform,
            delivery.push_token,
            &self.apns,
            &self.fcm,
        ) {
            (Some("apns"), Some(token), Some(apns), _) => {
                ("apns", apns.push(delivery, token).await)
            }
            (Some("fcm"), Some(token), _, Some(fcm)) => ("fcm", fcm.push(delivery, token).await),
            _ => ("fallback", self.fallback.push(delivery).await),
        };
        let outcome = match &result {
            Ok(Pushed::Sent) => "sent",
            Ok(Pushed::TokenRejected) => "token_rejected",
            Err(_) => "failed",
        };
        metrics::counter!("gochat_pushes_total", "provider" => provider, "outcome" => outcome)
            .increment(1);
        result
    }
}

/// Logs each push.
pub struct LogProvider;

#[async_trait]
impl PushProvider for LogProvider {
    async fn push(&self, delivery: &Delivery<'_>) -> Result<Pushed, TaskError> {
        let push = delivery.push;
        tracing::info!(user = %push.user_id, device = delivery.device_id.unwrap_or("-"), message = %push.message_id, kind = %push.push_type, title = %push.title, "offline push");
        Ok(Pushed::Sent)
    }
}

/// POSTs each push as JSON; any non-2xx answer is a failure.
pub struct WebhookProvider {
    http: Arc<HttpsClient>,
    url: Uri,
}

impl WebhookProvider {
    /// A provider posting to `url` (`https://`, or `http://` inside the
    /// operator's network).
    pub fn new(url: &str, http: Arc<HttpsClient>) -> Result<Self, TaskError> {
        let url: Uri = url
            .parse()
            .map_err(|e| push_error(format!("task.webhook_url: {e}")))?;
        if !matches!(url.scheme_str(), Some("https" | "http")) || url.host().is_none() {
            return Err(push_error(format!(
                "task.webhook_url must be an http:// or https:// URL (got {url})"
            )));
        }
        Ok(Self { http, url })
    }
}

#[async_trait]
impl PushProvider for WebhookProvider {
    async fn push(&self, delivery: &Delivery<'_>) -> Result<Pushed, TaskError> {
        let body = serde_json::to_vec(delivery).map_err(|e| TaskError::Push(Box::new(e)))?;
        let request = Request::post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| TaskError::Push(Box::new(e)))?;
        let reply = self.http.send(request).await?;
        if !reply.status.is_success() {
            return Err(push_error(format!("webhook answered {}", reply.status)));
        }
        Ok(Pushed::Sent)
    }
}
