//! The Kafka bus over TLS, configured as an operator would (`[kafka.tls]`):
//! topics made, a record produced and read back by a consumer group, all
//! encrypted; a client that does not trust the CA, or speaks in the clear,
//! gets nothing through. The dev stack's broker (nisshi 0.7) cannot serve
//! TLS itself (its `--cert` and `--key` flags exclude each other), so it
//! runs behind a TLS terminator started here, with a certificate from a
//! throwaway CA, and advertises the terminator's address: what a client
//! sees is a TLS-only Kafka listener, as behind a TLS sidecar.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use gochat_engines::bus::kafka::{KafkaBus, KafkaInbox, KafkaSettings, ensure_topics};
use gochat_engines::bus::{Bus, Inbox};
use gochat_proto::ids::Id;
use gochat_proto::kafka::{OfflinePush, Task, TaskRecord};
use gochat_proto::keys::Names;
use gochat_proto::settings::ClientTls;
use gochat_testkit::pki::TestPki;
use gochat_testkit::process::{Server, free_port};
use gochat_testkit::stack::{broker_binary, unique};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Accepts TLS on a port of its own and relays the clear bytes to
/// `backend`; returns the port.
async fn tls_terminator(pki: &TestPki, backend: u16) -> Result<u16> {
    let certs = CertificateDer::pem_file_iter(&pki.server_cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&pki.server_key)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut clear) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut clear).await;
            });
        }
    });
    Ok(port)
}

/// The broker on a clear port, advertising the TLS terminator in front of
/// it, whose port the returned server carries.
async fn tls_broker(dir: &std::path::Path, pki: &TestPki) -> Result<Server> {
    let backend = free_port()?;
    let port = tls_terminator(pki, backend).await?;
    // An empty working directory: the broker reads a `.env` from where it starts.
    let work = dir.join("broker");
    std::fs::create_dir_all(&work)?;
    let mut command = Command::new(broker_binary()?);
    command
        .current_dir(&work)
        .arg("broker")
        .arg("--listener-url")
        .arg(format!("tcp://127.0.0.1:{backend}"))
        .arg("--advertised-listener-url")
        .arg(format!("tcp://localhost:{port}"))
        .args(["--storage-engine", "memory://nisshi/"]);
    Server::spawn(command, port)
}

fn settings(port: u16, prefix: &str, tls: Option<ClientTls>) -> KafkaSettings {
    KafkaSettings {
        brokers: format!("localhost:{port}"),
        names: Names::new(prefix.to_owned()),
        idempotence: true,
        tls,
    }
}

fn a_task() -> TaskRecord {
    TaskRecord {
        task_id: unique("task-"),
        task: Task::OfflinePush(OfflinePush {
            user_id: Id(7),
            message_id: Id(4242),
            conversation_id: "s_5_7".into(),
            title: "alice".into(),
            content: "over tls".into(),
            push_type: "message".into(),
            seq_id: 3,
            created_at: 0,
        }),
        timestamp: 0,
        retry_count: 0,
        version: gochat_proto::WIRE_VERSION.into(),
        last_error: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_produces_and_consumes_over_tls_with_a_trusted_broker_only() -> Result<()> {
    let dir = std::env::temp_dir().join(unique("gochat-kafka-tls-"));
    let pki = TestPki::create(&dir.join("pki"))?;
    let broker = tls_broker(&dir, &pki).await?;
    let prefix = unique("tls") + "-";
    let trusted = settings(
        broker.port,
        &prefix,
        Some(ClientTls {
            ca_file: Some(pki.ca_file.clone()),
            ..ClientTls::default()
        }),
    );
    let mut made = Err(anyhow::anyhow!("no attempt"));
    for _ in 0..50 {
        made = ensure_topics(&trusted, &[]).await.map_err(Into::into);
        if made.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    made.context("topics over TLS")?;
    let bus = KafkaBus::new(&trusted)?;
    bus.ping().await?;
    let task = a_task();
    bus.send_task(&task).await?;
    let mut inbox = KafkaInbox::subscribe(&trusted, &unique("g"), &trusted.names.task_topic())?;
    let delivery = tokio::time::timeout(Duration::from_secs(30), inbox.next())
        .await
        .context("no record over TLS within 30 s")?
        .context("the inbox closed")?;
    let read: TaskRecord = serde_json::from_slice(&delivery.payload)?;
    assert_eq!(read, task);
    inbox.close().await;

    // A CA that did not sign the broker's certificate, and the clear: no
    // metadata, so nothing could be produced.
    let other = TestPki::create(&dir.join("other"))?;
    let untrusting = settings(
        broker.port,
        &prefix,
        Some(ClientTls {
            ca_file: Some(other.ca_file.clone()),
            ..ClientTls::default()
        }),
    );
    assert!(KafkaBus::new(&untrusting)?.ping().await.is_err());
    assert!(
        KafkaBus::new(&settings(broker.port, &prefix, None))?
            .ping()
            .await
            .is_err()
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
