//! HTTPS on the REST listener: a certificate made here (rcgen), a standard
//! client (curl) that trusts only it, and a renewed certificate served after
//! SIGHUP without a restart.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use gochat_control::config::TlsConfig;
use support::*;

/// A self-signed certificate for localhost, written as `{name}.pem` (the
/// certificate, which is also the client's CA) and `{name}.key`.
fn certificate(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, made.cert.pem())?;
    std::fs::write(&key, made.signing_key.serialize_pem())?;
    Ok((cert, key))
}

/// `curl https://localhost:{port}/healthz` trusting only `ca`: its body, or
/// `None` when the connection or the certificate check failed.
fn healthz(port: u16, ca: &Path) -> Result<Option<String>> {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "5", "--cacert"])
        .arg(ca)
        .arg(format!("https://localhost:{port}/healthz"))
        .output()
        .context("curl")?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_certificate_renewed_on_sighup() -> Result<()> {
    let dir = std::env::temp_dir().join(unique("gochat-tls-"));
    std::fs::create_dir_all(&dir)?;
    let (cert, key) = certificate(&dir, "first")?;
    let mut config = test_config(Backend::Embedded).await?;
    config.http.tls = Some(TlsConfig {
        cert_file: dir.join("live.pem"),
        key_file: dir.join("live.key"),
    });
    std::fs::copy(&cert, dir.join("live.pem"))?;
    std::fs::copy(&key, dir.join("live.key"))?;
    let s = start_with(config).await?;
    let port = s
        .running
        .as_ref()
        .and_then(|r| r.http_addr)
        .context("http address")?
        .port();
    let check = |ca: PathBuf| tokio::task::spawn_blocking(move || healthz(port, &ca));
    assert_eq!(check(cert.clone()).await??.as_deref(), Some("ok"));
    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));

    // Renewed on disk, then SIGHUP: the new one is served, the old is not.
    let (renewed, renewed_key) = certificate(&dir, "second")?;
    std::fs::copy(&renewed, dir.join("live.pem"))?;
    std::fs::copy(&renewed_key, dir.join("live.key"))?;
    let hup = Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()?;
    assert!(hup.success());
    let mut served = None;
    for _ in 0..50 {
        served = check(renewed.clone()).await??;
        if served.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        served.as_deref(),
        Some("ok"),
        "the renewed certificate is served"
    );
    assert_eq!(check(cert).await??, None, "the old one is gone");
    Ok(())
}

#[tokio::test]
async fn a_missing_or_broken_certificate_stops_the_start() -> Result<()> {
    let dir = std::env::temp_dir().join(unique("gochat-tls-"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("bad.pem"), "not a certificate")?;
    for (cert, key) in [("missing.pem", "missing.key"), ("bad.pem", "bad.pem")] {
        let mut config = test_config(Backend::Embedded).await?;
        config.http.tls = Some(TlsConfig {
            cert_file: dir.join(cert),
            key_file: dir.join(key),
        });
        assert!(start_with(config).await.is_err(), "{cert}");
    }
    Ok(())
}
