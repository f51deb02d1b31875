//! Apple Push Notification service over HTTP/2 with token-based auth: one
//! ES256 JWT (team id, key id) signs every request, renewed well inside
//! Apple's one-hour limit and not more often than its twenty-minute floor.
//! A device token Apple no longer accepts is reported as rejected, so the
//! task service drops the registration instead of retrying forever.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::https::HttpsClient;
use super::{Delivery, Pushed, push_error};
use crate::config::ApnsConfig;
use crate::task::TaskError;

/// A provider token is reused this long (Apple: refresh between 20 and 60 minutes).
const TOKEN_LIFETIME: Duration = Duration::from_secs(40 * 60);
/// Apple keeps a push for an offline device this long.
const EXPIRATION_SECS: i64 = 24 * 3600;

/// Sends to APNs.
pub struct ApnsProvider {
    http: Arc<HttpsClient>,
    key: EncodingKey,
    key_id: String,
    team_id: String,
    topic: String,
    endpoint: String,
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
}

#[derive(Deserialize)]
struct Refusal {
    #[serde(default)]
    reason: String,
}

impl ApnsProvider {
    /// Reads and checks the signing key.
    pub fn new(config: &ApnsConfig, http: Arc<HttpsClient>) -> Result<Self, TaskError> {
        let pem = std::fs::read(&config.key_file)
            .map_err(|e| push_error(format!("apns key {}: {e}", config.key_file.display())))?;
        let key = EncodingKey::from_ec_pem(&pem).map_err(|e| {
            push_error(format!(
                "apns key {} is not a PKCS#8 P-256 key: {e}",
                config.key_file.display()
            ))
        })?;
        let provider = Self {
            http,
            key,
            key_id: config.key_id.clone(),
            team_id: config.team_id.clone(),
            topic: config.topic.clone(),
            endpoint: config.endpoint.trim_end_matches('/').to_owned(),
            token: Mutex::new(None),
        };
        provider.bearer()?;
        Ok(provider)
    }

    /// The current provider token, signed afresh when it is old.
    fn bearer(&self) -> Result<String, TaskError> {
        let mut cached = self
            .token
            .lock()
            .map_err(|_| push_error("apns token lock poisoned".into()))?;
        if let Some((token, made)) = cached.as_ref()
            && made.elapsed() < TOKEN_LIFETIME
        {
            return Ok(token.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let claims = Claims {
            iss: &self.team_id,
            iat: gochat_proto::ids::now_millis() / 1000,
        };
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| push_error(format!("apns token: {e}")))?;
        *cached = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    fn forget_token(&self) {
        if let Ok(mut cached) = self.token.lock() {
            *cached = None;
        }
    }

    /// Sends one notification to the device `token`.
    pub async fn push(&self, delivery: &Delivery<'_>, token: &str) -> Result<Pushed, TaskError> {
        // Device tokens are hex; anything else would never be accepted and
        // must not reach the request path.
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Pushed::TokenRejected);
        }
        let push = delivery.push;
        let body = json!({
            "aps": {
                "alert": {"title": push.title, "body": push.content},
                "sound": "default",
                "thread-id": push.conversation_id,
            },
            "gochat": {
                "message_id": push.message_id,
                "conversation_id": push.conversation_id,
                "push_type": push.push_type,
                "seq_id": push.seq_id,
            },
        });
        let expiration = gochat_proto::ids::now_millis() / 1000 + EXPIRATION_SECS;
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/3/device/{token}", self.endpoint))
            .header("authorization", format!("bearer {}", self.bearer()?))
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header("apns-expiration", expiration.to_string())
            // A retried task shows the notification once, not twice.
            .header("apns-collapse-id", push.message_id.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| push_error(format!("apns request: {e}")))?;
        let reply = self.http.send(request).await?;
        let reason = || {
            serde_json::from_slice::<Refusal>(&reply.body)
                .map(|r| r.reason)
                .unwrap_or_default()
        };
        match reply.status {
            StatusCode::OK => Ok(Pushed::Sent),
            StatusCode::GONE => Ok(Pushed::TokenRejected),
            StatusCode::BAD_REQUEST
                if matches!(
                    reason().as_str(),
                    "BadDeviceToken" | "DeviceTokenNotForTopic"
                ) =>
            {
                Ok(Pushed::TokenRejected)
            }
            StatusCode::FORBIDDEN
                if matches!(
                    reason().as_str(),
                    "ExpiredProviderToken" | "InvalidProviderToken"
                ) =>
            {
                self.forget_token();
                Err(push_error(format!(
                    "apns refused the provider token: {}",
                    reason()
                )))
            }
            status => Err(push_error(format!("apns answered {status}: {}", reason()))),
        }
    }
}
