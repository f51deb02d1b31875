//! Firebase Cloud Messaging, HTTP v1 API. The service account's RS256 key
//! signs an assertion that Google's OAuth endpoint trades for an access
//! token (an hour's worth); the token is reused until shortly before it
//! expires, and one refresh at a time runs. A registration token FCM no
//! longer knows is reported as rejected so the device is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::https::HttpsClient;
use super::{Delivery, Pushed, push_error};
use crate::config::FcmConfig;
use crate::task::TaskError;

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The assertion's lifetime (Google's maximum).
const ASSERTION_SECS: i64 = 3600;
/// An access token is replaced this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(120);

/// The fields of a service account key file this provider uses.
#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    private_key: String,
    client_email: String,
    token_uri: String,
    #[serde(default)]
    private_key_id: Option<String>,
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct Grant {
    access_token: String,
    expires_in: u64,
}

/// Sends to FCM.
pub struct FcmProvider {
    http: Arc<HttpsClient>,
    account: ServiceAccount,
    key: EncodingKey,
    send_url: String,
    access: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl FcmProvider {
    /// Reads and checks the service account file.
    pub fn new(config: &FcmConfig, http: Arc<HttpsClient>) -> Result<Self, TaskError> {
        let file = config.service_account_file.display();
        let text = std::fs::read(&config.service_account_file)
            .map_err(|e| push_error(format!("fcm service account {file}: {e}")))?;
        let account: ServiceAccount = serde_json::from_slice(&text)
            .map_err(|e| push_error(format!("fcm service account {file}: {e}")))?;
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| push_error(format!("fcm service account {file}: private_key: {e}")))?;
        let send_url = format!(
            "{}/v1/projects/{}/messages:send",
            config.endpoint.trim_end_matches('/'),
            account.project_id
        );
        Ok(Self {
            http,
            account,
            key,
            send_url,
            access: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid access token, fetched when there is none or it is about to expire.
    async fn access_token(&self) -> Result<String, TaskError> {
        let mut cached = self.access.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && Instant::now() + REFRESH_MARGIN < *expires
        {
            return Ok(token.clone());
        }
        let iat = gochat_proto::ids::now_millis() / 1000;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.account.private_key_id.clone();
        let claims = Assertion {
            iss: &self.account.client_email,
            scope: SCOPE,
            aud: &self.account.token_uri,
            iat,
            exp: iat + ASSERTION_SECS,
        };
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| push_error(format!("fcm assertion: {e}")))?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let request = Request::builder()
            .method(Method::POST)
            .uri(&self.account.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| push_error(format!("fcm token request: {e}")))?;
        let reply = self.http.send(request).await?;
        if reply.status != StatusCode::OK {
            return Err(push_error(format!(
                "fcm token endpoint answered {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            )));
        }
        let grant: Grant = serde_json::from_slice(&reply.body)
            .map_err(|e| push_error(format!("fcm token endpoint: {e}")))?;
        let expires = Instant::now() + Duration::from_secs(grant.expires_in);
        *cached = Some((grant.access_token.clone(), expires));
        Ok(grant.access_token)
    }

    /// Sends one notification to the registration `token`.
    pub async fn push(&self, delivery: &Delivery<'_>, token: &str) -> Result<Pushed, TaskError> {
        let push = delivery.push;
        // `data` values must all be strings.
        let body = json!({"message": {
            "token": token,
            "notification": {"title": push.title, "body": push.content},
            "data": {
                "message_id": push.message_id.to_string(),
                "conversation_id": push.conversation_id,
                "push_type": push.push_type,
                "seq_id": push.seq_id.to_string(),
            },
            "android": {"priority": "high"},
        }});
        let request = Request::builder()
            .method(Method::POST)
            .uri(&self.send_url)
            .header(
                "authorization",
                format!("Bearer {}", self.access_token().await?),
            )
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| push_error(format!("fcm request: {e}")))?;
        let reply = self.http.send(request).await?;
        let error: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let message = error["error"]["message"].as_str().unwrap_or_default();
        match reply.status {
            StatusCode::OK => Ok(Pushed::Sent),
            // UNREGISTERED: the app was removed or the token rotated.
            StatusCode::NOT_FOUND => Ok(Pushed::TokenRejected),
            // SENDER_ID_MISMATCH: the token belongs to another project.
            StatusCode::FORBIDDEN if error_code(&error) == Some("SENDER_ID_MISMATCH") => {
                Ok(Pushed::TokenRejected)
            }
            StatusCode::BAD_REQUEST
                if message.to_ascii_lowercase().contains("registration token") =>
            {
                Ok(Pushed::TokenRejected)
            }
            StatusCode::UNAUTHORIZED => {
                *self.access.lock().await = None;
                Err(push_error(format!(
                    "fcm refused the access token: {message}"
                )))
            }
            status => Err(push_error(format!("fcm answered {status}: {message}"))),
        }
    }
}

/// The FCM error code in an error body's details, if any.
fn error_code(error: &Value) -> Option<&str> {
    error["error"]["details"]
        .as_array()?
        .iter()
        .find_map(|d| d["errorCode"].as_str())
}
