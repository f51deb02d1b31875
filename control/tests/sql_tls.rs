//! The repo over TLS to MySQL/MariaDB: a private MariaDB started here with
//! a certificate from a throwaway CA and `require_secure_transport`, so a
//! connection in the clear is refused by the server itself. The operator's
//! side is the database URL (`ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key`),
//! documented in docs/configuration.md.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gochat_control::repo::UserRepo;
use gochat_control::repo::sql::SqlRepo;
use gochat_testkit::pki::TestPki;
use gochat_testkit::process::{Server, free_port};
use sqlx::{Connection, Executor, Row};
use support::*;

/// A MariaDB server of its own (data in a temp dir).
fn private_mariadb(dir: &Path, pki: &TestPki) -> Result<Server> {
    let data = dir.join("data");
    let installed = Command::new("mariadb-install-db")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args([
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("mariadb-install-db (the dev stack installs MariaDB)")?;
    if !installed.success() {
        bail!("mariadb-install-db failed: {installed}");
    }
    let port = free_port()?;
    let mut command = Command::new("mariadbd");
    command
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.join("sock").display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        .arg(format!("--port={port}"))
        .arg(format!("--ssl-cert={}", pki.server_cert.display()))
        .arg(format!("--ssl-key={}", pki.server_key.display()))
        .arg(format!("--ssl-ca={}", pki.ca_file.display()))
        .args([
            "--user=root",
            "--bind-address=127.0.0.1",
            "--require-secure-transport=ON",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
        ]);
    Server::spawn(command, port)
}

/// `mysql://user@localhost:port/db` with TLS verified against `ca`.
fn tls_url(port: u16, user: &str, db: &str, ca: &Path) -> String {
    format!(
        "mysql://{user}@localhost:{port}/{db}?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
        ca.display()
    )
}

#[tokio::test]
async fn the_repo_reaches_mariadb_over_verified_tls_only() -> Result<()> {
    let dir = std::env::temp_dir().join(unique("gochat-sql-tls-"));
    std::fs::create_dir_all(&dir)?;
    let pki = TestPki::create(&dir.join("pki"))?;
    let server = private_mariadb(&dir, &pki)?;
    let admin_url = tls_url(server.port, "root", "mysql", &pki.ca_file);
    let mut admin = None;
    for _ in 0..100 {
        if let Ok(conn) = sqlx::MySqlConnection::connect(&admin_url).await {
            admin = Some(conn);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut admin = admin.context("the private MariaDB did not come up over TLS")?;
    let cipher: String = admin
        .fetch_one("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await?
        .try_get(1)?;
    assert!(!cipher.is_empty(), "not encrypted");
    admin
        .execute(
            "CREATE DATABASE gochat CHARACTER SET utf8mb4; \
             CREATE USER 'certified'@'%' REQUIRE X509; \
             GRANT ALL ON gochat.* TO 'certified'@'%'",
        )
        .await?;

    // The repo migrates and works over TLS.
    let url = tls_url(server.port, "root", "gochat", &pki.ca_file);
    let repo = SqlRepo::connect(&url, 2).await?;
    repo.create_user("tls-user", "hash", "").await?;
    assert_eq!(repo.get_user_auth("tls-user").await?.password_hash, "hash");

    // Mutual TLS: a user the server admits with a client certificate only.
    let with_cert = format!(
        "{}&ssl-cert={}&ssl-key={}",
        tls_url(server.port, "certified", "gochat", &pki.ca_file),
        pki.client_cert.display(),
        pki.client_key.display()
    );
    let certified = SqlRepo::connect(&with_cert, 1).await?;
    assert_eq!(
        certified.get_user_auth("tls-user").await?.password_hash,
        "hash"
    );
    let without_cert = tls_url(server.port, "certified", "gochat", &pki.ca_file);
    assert!(SqlRepo::connect(&without_cert, 1).await.is_err());

    // Refused: in the clear (by the server), and a server certificate from
    // a CA the client was not told to trust.
    let clear = format!(
        "mysql://root@localhost:{}/gochat?ssl-mode=DISABLED",
        server.port
    );
    assert!(SqlRepo::connect(&clear, 1).await.is_err());
    let other = TestPki::create(&dir.join("other"))?;
    let untrusted = tls_url(server.port, "root", "gochat", &other.ca_file);
    assert!(SqlRepo::connect(&untrusted, 1).await.is_err());

    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
