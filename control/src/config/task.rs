//! The task service's settings: retries, the push delay, presence reach,
//! and where offline pushes go (a webhook, APNs, FCM, or the log).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Task service.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TaskConfig {
    /// Offline pushes are POSTed here as JSON; absent: they are logged.
    /// Devices of a platform without its own provider below go here too.
    pub webhook_url: Option<String>,
    /// Pushes to devices registered as `apns` go straight to Apple.
    pub apns: Option<ApnsConfig>,
    /// Pushes to devices registered as `fcm` go straight to Google.
    pub fcm: Option<FcmConfig>,
    /// Extra root certificates (PEM) trusted by the webhook, APNs and FCM
    /// clients, besides the system's: a private CA, a TLS-inspecting
    /// egress proxy, or a test.
    pub push_ca_file: Option<PathBuf>,
    /// Failures before a task goes to the dead-letter topic.
    pub max_attempts: u32,
    /// Tasks handled at once (one target's tasks stay in order).
    pub consume_in_flight: usize,
    /// How long an offline push waits after its message (ms); a read (or
    /// a device's `delivered`) up to the message by then cancels it.
    pub push_delay_ms: u64,
    /// Presence goes to the members of a user's groups up to this size
    /// (besides friends and 1:1 peers); larger groups would turn every
    /// connect into a broadcast.
    pub presence_group_max: usize,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            apns: None,
            fcm: None,
            push_ca_file: None,
            max_attempts: 3,
            consume_in_flight: 64,
            presence_group_max: 100,
            push_delay_ms: 2000,
        }
    }
}

/// Apple Push Notification service, token-based (`.p8` key) over HTTP/2.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    /// The `.p8` signing key downloaded from the Apple developer account.
    pub key_file: PathBuf,
    /// The key's id (10 characters), sent as the token's `kid`.
    pub key_id: String,
    /// The developer team id, the token's issuer.
    pub team_id: String,
    /// The app's bundle id (`apns-topic`).
    pub topic: String,
    /// `https://api.push.apple.com`, or `https://api.sandbox.push.apple.com`
    /// for development builds of the app.
    #[serde(default = "apns_endpoint")]
    pub endpoint: String,
}

fn apns_endpoint() -> String {
    "https://api.push.apple.com".into()
}

/// Firebase Cloud Messaging, HTTP v1 API with a service account.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {
    /// The service account's JSON key file (it names the project, the
    /// account, its private key and the OAuth token endpoint).
    pub service_account_file: PathBuf,
    /// Where messages are sent.
    #[serde(default = "fcm_endpoint")]
    pub endpoint: String,
}

fn fcm_endpoint() -> String {
    "https://fcm.googleapis.com".into()
}
