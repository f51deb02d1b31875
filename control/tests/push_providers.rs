//! The APNs and FCM providers against local fake HTTP/2 servers over TLS
//! (a certificate made here with rcgen, trusted through
//! `task.push_ca_file`): each fake checks the request's shape the way the
//! real service would (HTTP/2, path, headers, a JWT signed with the key
//! the provider was given) and answers as scripted, so the providers'
//! handling of rejected tokens and expired credentials is tested too. The
//! webhook is tested over TLS the same way. The last test runs the whole
//! way: a message to an offline user becomes an APNs request, and a token
//! APNs calls gone unregisters the device.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use gochat_control::config::{ApnsConfig, FcmConfig, TaskConfig};
use gochat_control::repo::Device;
use gochat_control::task::providers::{Delivery, Providers, PushProvider, Pushed};
use gochat_proto::ids::Id;
use gochat_proto::kafka::OfflinePush;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, Version};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use support::*;

/// One request a fake service received.
#[derive(Debug, Clone)]
struct Seen {
    version: Version,
    method: String,
    path: String,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

type Script = Arc<dyn Fn(&Seen) -> (u16, String) + Send + Sync>;

/// A TLS + HTTP/2 server on port 0 answering by `script`.
struct FakeService {
    url: String,
    ca_file: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<Script>>,
}

impl FakeService {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
    fn answer(&self, script: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static) {
        if let Ok(mut s) = self.script.lock() {
            *s = Arc::new(script);
        }
    }
}

async fn fake_service(dir: &std::path::Path) -> Result<FakeService> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let ca_file = dir.join("fake-ca.pem");
    std::fs::write(&ca_file, cert.cert.pem())?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)?;
    // Like APNs, speak HTTP/2 only.
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script: Arc<Mutex<Script>> = Arc::new(Mutex::new(Arc::new(|_: &Seen| (200, "{}".into()))));
    let (seen_, script_) = (seen.clone(), script.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen, script) = (acceptor.clone(), seen_.clone(), script_.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                        let (seen, script) = (seen.clone(), script.clone());
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let request = Seen {
                                version: parts.version,
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_owned(),
                                headers: parts.headers,
                                body,
                            };
                            let script = script.lock().map(|s| s.clone());
                            let (status, body) = match script {
                                Ok(script) => script(&request),
                                Err(_) => (500, String::new()),
                            };
                            if let Ok(mut s) = seen.lock() {
                                s.push(request);
                            }
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                        }
                    });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
            });
        }
    });
    Ok(FakeService {
        url: format!("https://localhost:{}", addr.port()),
        ca_file,
        seen,
        script,
    })
}

fn temp_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(unique("gochat-push-"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn a_push() -> OfflinePush {
    OfflinePush {
        user_id: Id(7),
        message_id: Id(4242),
        conversation_id: "s_5_7".into(),
        title: "alice".into(),
        content: "hello bob".into(),
        push_type: "message".into(),
        seq_id: 3,
        created_at: 0,
    }
}

fn device(platform: &str, token: &str) -> Device {
    Device {
        user_id: 7,
        device_id: "phone".into(),
        platform: platform.into(),
        push_token: token.into(),
        ..Device::default()
    }
}

const APNS_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// An APNs signing key (PKCS#8 P-256, as Apple's `.p8`) and config.
fn apns_config(dir: &std::path::Path, fake: &FakeService) -> Result<(TaskConfig, String)> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let key_file = dir.join("AuthKey_KEYID12345.p8");
    std::fs::write(&key_file, key.serialize_pem())?;
    let config = TaskConfig {
        apns: Some(ApnsConfig {
            key_file,
            key_id: "KEYID12345".into(),
            team_id: "TEAM123456".into(),
            topic: "com.example.chat".into(),
            endpoint: fake.url.clone(),
        }),
        push_ca_file: Some(fake.ca_file.clone()),
        ..TaskConfig::default()
    };
    Ok((config, key.public_key_pem()))
}

#[tokio::test]
async fn apns_pushes_over_http2_with_a_signed_provider_token() -> Result<()> {
    let dir = temp_dir()?;
    let fake = fake_service(&dir).await?;
    let (config, public_key) = apns_config(&dir, &fake)?;
    let providers = Providers::from_config(&config)?;
    let push = a_push();
    let phone = device("apns", APNS_TOKEN);
    assert_eq!(
        providers.push(&Delivery::to_device(&push, &phone)).await?,
        Pushed::Sent
    );

    let seen = fake.seen();
    let request = seen.first().context("APNs got no request")?;
    assert_eq!(request.version, Version::HTTP_2);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/3/device/{APNS_TOKEN}"));
    assert_eq!(request.header("apns-topic"), "com.example.chat");
    assert_eq!(request.header("apns-push-type"), "alert");
    assert_eq!(request.header("apns-priority"), "10");
    assert_eq!(request.header("apns-collapse-id"), "4242");
    assert!(request.header("apns-expiration").parse::<i64>()? > 0);
    let jwt = request
        .header("authorization")
        .strip_prefix("bearer ")
        .context("no bearer token")?;
    let header = jsonwebtoken::decode_header(jwt)?;
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some("KEYID12345"));
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(
        jwt,
        &DecodingKey::from_ec_pem(public_key.as_bytes())?,
        &validation,
    )?
    .claims;
    assert_eq!(claims["iss"], "TEAM123456");
    let now = gochat_proto::ids::now_millis() / 1000;
    assert!((claims["iat"].as_i64().unwrap_or(0) - now).abs() < 60);
    let body = request.json();
    assert_eq!(
        body["aps"]["alert"],
        json!({"title":"alice","body":"hello bob"})
    );
    assert_eq!(body["gochat"]["message_id"], "4242");

    // The same provider token signs the next request.
    providers.push(&Delivery::to_device(&push, &phone)).await?;
    assert_eq!(
        fake.seen()[1].header("authorization"),
        format!("bearer {jwt}")
    );

    // Tokens Apple will never take again.
    fake.answer(|_| (410, r#"{"reason":"Unregistered","timestamp":1}"#.into()));
    assert_eq!(
        providers.push(&Delivery::to_device(&push, &phone)).await?,
        Pushed::TokenRejected
    );
    fake.answer(|_| (400, r#"{"reason":"BadDeviceToken"}"#.into()));
    assert_eq!(
        providers.push(&Delivery::to_device(&push, &phone)).await?,
        Pushed::TokenRejected
    );
    // Anything else is a failure the task retries.
    for refusal in [
        (400, r#"{"reason":"PayloadTooLarge"}"#),
        (403, r#"{"reason":"ExpiredProviderToken"}"#),
        (429, r#"{"reason":"TooManyRequests"}"#),
        (503, r#"{"reason":"ServiceUnavailable"}"#),
    ] {
        fake.answer(move |_| (refusal.0, refusal.1.into()));
        assert!(
            providers
                .push(&Delivery::to_device(&push, &phone))
                .await
                .is_err(),
            "{refusal:?}"
        );
    }
    // A token that is not hex never reaches Apple (nor the request path).
    let sent = fake.seen().len();
    let odd = device("apns", "../../3/device/x");
    assert_eq!(
        providers.push(&Delivery::to_device(&push, &odd)).await?,
        Pushed::TokenRejected
    );
    // Devices of other platforms, and users without devices, go to the
    // fallback (the log here), not to Apple.
    let tab = device("webhook", "hook-token");
    assert_eq!(
        providers.push(&Delivery::to_device(&push, &tab)).await?,
        Pushed::Sent
    );
    assert_eq!(
        providers.push(&Delivery::to_user(&push)).await?,
        Pushed::Sent
    );
    assert_eq!(fake.seen().len(), sent);
    Ok(())
}

#[tokio::test]
async fn an_unusable_apns_key_or_untrusted_server_is_refused() -> Result<()> {
    let dir = temp_dir()?;
    let fake = fake_service(&dir).await?;
    let (mut config, _) = apns_config(&dir, &fake)?;
    // A key that is not P-256 (here RSA) stops the start.
    let mut bad = config.clone();
    if let Some(apns) = bad.apns.as_mut() {
        apns.key_file =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fcm-test-key.pem");
    }
    assert!(Providers::from_config(&bad).is_err());
    // Without the fake's certificate among the roots, TLS fails: no push.
    config.push_ca_file = None;
    let providers = Providers::from_config(&config)?;
    let push = a_push();
    let phone = device("apns", APNS_TOKEN);
    assert!(
        providers
            .push(&Delivery::to_device(&push, &phone))
            .await
            .is_err()
    );
    assert!(fake.seen().is_empty());
    Ok(())
}

/// The webhook over TLS: posted as JSON to a server trusted through
/// `task.push_ca_file` (HTTP/2 here, as the fake offers it), a failure
/// answer is an error, and without the CA nothing is sent.
#[tokio::test]
async fn the_webhook_posts_over_https_to_a_trusted_server_only() -> Result<()> {
    let dir = temp_dir()?;
    let fake = fake_service(&dir).await?;
    let mut config = TaskConfig {
        webhook_url: Some(format!("{}/hooks/push?v=1", fake.url)),
        push_ca_file: Some(fake.ca_file.clone()),
        ..TaskConfig::default()
    };
    let providers = Providers::from_config(&config)?;
    let push = a_push();
    let tab = device("webhook", "hook-token");
    assert_eq!(
        providers.push(&Delivery::to_device(&push, &tab)).await?,
        Pushed::Sent
    );
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].version, Version::HTTP_2);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/hooks/push");
    assert_eq!(seen[0].header("content-type"), "application/json");
    let body = seen[0].json();
    assert_eq!(body["push_token"], "hook-token");
    assert_eq!(body["platform"], "webhook");
    assert_eq!(body["content"], "hello bob");
    fake.answer(|_| (503, String::new()));
    assert!(
        providers
            .push(&Delivery::to_device(&push, &tab))
            .await
            .is_err()
    );
    fake.answer(|_| (200, "{}".into()));
    config.push_ca_file = None;
    let untrusting = Providers::from_config(&config)?;
    assert!(
        untrusting
            .push(&Delivery::to_device(&push, &tab))
            .await
            .is_err()
    );
    assert_eq!(fake.seen().len(), 2);
    // Not a URL a webhook can be: refused at the start.
    config.webhook_url = Some("ftp://example.com/x".into());
    assert!(Providers::from_config(&config).is_err());
    Ok(())
}

/// A service account file (a test-only RSA key) whose token endpoint is the fake.
fn fcm_config(dir: &std::path::Path, fake: &FakeService) -> Result<TaskConfig> {
    let private_key = include_str!("data/fcm-test-key.pem");
    let account = json!({
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "kid-1",
        "private_key": private_key,
        "client_email": "pusher@demo-project.iam.gserviceaccount.com",
        "token_uri": format!("{}/token", fake.url),
    });
    let service_account_file = dir.join("service-account.json");
    std::fs::write(&service_account_file, account.to_string())?;
    Ok(TaskConfig {
        fcm: Some(FcmConfig {
            service_account_file,
            endpoint: fake.url.clone(),
        }),
        push_ca_file: Some(fake.ca_file.clone()),
        ..TaskConfig::default()
    })
}

/// Answers like Google: the token endpoint grants `ya29.<n>` for a valid
/// assertion, the send endpoint takes messages bearing the last grant.
fn google(grants: Arc<Mutex<u32>>) -> impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static {
    move |request| {
        let granted = grants.lock().map(|g| *g).unwrap_or(0);
        if request.path == "/token" {
            let next = granted + 1;
            if let Ok(mut g) = grants.lock() {
                *g = next;
            }
            let grant = json!({"access_token": format!("ya29.{next}"), "expires_in": 3599, "token_type": "Bearer"});
            return (200, grant.to_string());
        }
        if request.header("authorization") != format!("Bearer ya29.{granted}") {
            return (401, json!({"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}).to_string());
        }
        (
            200,
            json!({"name":"projects/demo-project/messages/0:1"}).to_string(),
        )
    }
}

#[tokio::test]
async fn fcm_trades_a_service_account_assertion_for_an_access_token() -> Result<()> {
    let dir = temp_dir()?;
    let fake = fake_service(&dir).await?;
    let providers = Providers::from_config(&fcm_config(&dir, &fake)?)?;
    let grants = Arc::new(Mutex::new(0));
    fake.answer(google(grants.clone()));
    let push = a_push();
    let phone = device("fcm", "fcm:registration-token_1");
    for _ in 0..2 {
        assert_eq!(
            providers.push(&Delivery::to_device(&push, &phone)).await?,
            Pushed::Sent
        );
    }
    let seen = fake.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    // One grant serves both messages.
    let send = "/v1/projects/demo-project/messages:send";
    assert_eq!(paths, ["/token", send, send]);
    let token_request = &seen[0];
    assert_eq!(token_request.method, "POST");
    assert_eq!(
        token_request.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(&token_request.body)
            .into_owned()
            .collect();
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    let assertion = form.get("assertion").context("no assertion")?;
    assert_eq!(
        jsonwebtoken::decode_header(assertion)?.kid.as_deref(),
        Some("kid-1")
    );
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[format!("{}/token", fake.url)]);
    let public_key = include_bytes!("data/fcm-test-key.pub.pem");
    let claims = jsonwebtoken::decode::<Value>(
        assertion,
        &DecodingKey::from_rsa_pem(public_key)?,
        &validation,
    )?
    .claims;
    assert_eq!(claims["iss"], "pusher@demo-project.iam.gserviceaccount.com");
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/firebase.messaging"
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0),
        3600
    );

    let message = &seen[1];
    assert_eq!(message.version, Version::HTTP_2);
    assert_eq!(message.header("authorization"), "Bearer ya29.1");
    assert_eq!(
        message.json(),
        json!({"message": {
            "token": "fcm:registration-token_1",
            "notification": {"title": "alice", "body": "hello bob"},
            "data": {"message_id": "4242", "conversation_id": "s_5_7", "push_type": "message", "seq_id": "3"},
            "android": {"priority": "high"},
        }})
    );

    // A revoked access token: this push fails (the task retries), the next
    // fetches a new grant and goes through.
    if let Ok(mut g) = grants.lock() {
        *g += 10;
    }
    assert!(
        providers
            .push(&Delivery::to_device(&push, &phone))
            .await
            .is_err()
    );
    assert_eq!(
        providers.push(&Delivery::to_device(&push, &phone)).await?,
        Pushed::Sent
    );
    assert_eq!(
        fake.seen()
            .last()
            .map(|s| s.header("authorization").to_owned()),
        Some("Bearer ya29.12".into())
    );

    // Tokens FCM will never take again, and failures that are not the token's.
    let unregistered = json!({"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}});
    fake.answer(move |_| (404, unregistered.to_string()));
    assert_eq!(
        providers.push(&Delivery::to_device(&push, &phone)).await?,
        Pushed::TokenRejected
    );
    let invalid = json!({"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT"}});
    fake.answer(move |_| (400, invalid.to_string()));
    assert_eq!(
        providers.push(&Delivery::to_device(&push, &phone)).await?,
        Pushed::TokenRejected
    );
    fake.answer(|_| {
        (
            503,
            json!({"error":{"code":503,"message":"unavailable","status":"UNAVAILABLE"}})
                .to_string(),
        )
    });
    assert!(
        providers
            .push(&Delivery::to_device(&push, &phone))
            .await
            .is_err()
    );
    Ok(())
}

/// All the way: an offline user's message becomes a request to APNs for
/// each of their iPhones; the one APNs says is gone is unregistered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_an_offline_user_reaches_apns_and_dead_tokens_unregister() -> Result<()> {
    let dir = temp_dir()?;
    let fake = fake_service(&dir).await?;
    let mut config = test_config(Backend::Embedded).await?;
    config.task = TaskConfig {
        push_delay_ms: 0,
        ..apns_config(&dir, &fake)?.0
    };
    let gone = "ff".repeat(32);
    let gone_ = gone.clone();
    fake.answer(move |r| {
        if r.path.ends_with(&gone_) {
            (410, r#"{"reason":"Unregistered"}"#.into())
        } else {
            (200, String::new())
        }
    });
    let s = start_with(config).await?;
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
    for (device, token) in [("iphone", APNS_TOKEN), ("old-iphone", gone.as_str())] {
        let body = json!({"device_id": device, "platform": "apns", "push_token": token});
        assert_eq!(s.post(&bob, "/devices", body).await?.0, 201);
    }
    s.send(
        &alice,
        json!({"client_msg_id":"a1","to_user_id":bob.id,"content":"are you there?"}),
    )
    .await?;
    let repo = s.running.as_ref().context("running")?.repo.clone();
    let bob_id: i64 = bob.id.parse()?;
    let mut devices = Vec::new();
    for _ in 0..100 {
        devices = repo.list_devices(bob_id).await?;
        if devices.len() == 1 && fake.seen().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = fake.seen();
    let paths: std::collections::BTreeSet<_> = seen.iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            format!("/3/device/{APNS_TOKEN}"),
            format!("/3/device/{gone}")
        ]
        .into()
    );
    let pushed = seen
        .iter()
        .find(|r| r.path.ends_with(APNS_TOKEN))
        .context("no push")?;
    assert_eq!(
        pushed.json()["aps"]["alert"]["body"],
        "alice: are you there?"
    );
    assert!(
        pushed.json()["gochat"]["message_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let names: Vec<_> = devices.iter().map(|d| d.device_id.as_str()).collect();
    assert_eq!(names, ["iphone"]);
    Ok(())
}
