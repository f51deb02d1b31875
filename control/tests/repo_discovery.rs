//! The repo client in front of several repo services (`grpc.repo_endpoint`
//! as a list, hosts resolved to their addresses): calls spread over all of
//! them, and one that goes away leaves the others serving.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use gochat_control::repo::grpc::{RepoClient, RepoServer};
use gochat_control::repo::sql::SqlRepo;
use gochat_control::repo::{GroupRepo, Repo, UserRepo};
use tokio_util::sync::CancellationToken;

/// A repo service on SQLite, on port 0, until `stop` fires.
async fn repo_service(stop: CancellationToken) -> Result<(Arc<dyn Repo>, SocketAddr)> {
    let local: Arc<dyn Repo> = Arc::new(SqlRepo::connect(&support::fresh_sqlite(), 4).await?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RepoServer::service(local.clone()))
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned()),
    );
    Ok((local, addr))
}

/// How many of `names` each repo holds.
async fn held(repo: &Arc<dyn Repo>, names: &[String]) -> usize {
    let mut n = 0;
    for name in names {
        if repo.get_user_auth(name).await.is_ok() {
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_every_repo_service_of_the_list() -> Result<()> {
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let (a, addr_a) = repo_service(stop_a.clone()).await?;
    let (b, addr_b) = repo_service(stop_b.clone()).await?;
    // One by address, one by a name to resolve.
    let endpoints = format!(
        "http://127.0.0.1:{}, http://localhost:{}",
        addr_a.port(),
        addr_b.port()
    );
    let client = RepoClient::connect_lazy(&endpoints)?;
    let names: Vec<String> = (0..24).map(|n| format!("spread{n}")).collect();
    for name in &names {
        client.create_user(name, "h", "").await?;
    }
    let (on_a, on_b) = (held(&a, &names).await, held(&b, &names).await);
    assert_eq!(on_a + on_b, names.len(), "each call went to one service");
    assert!(on_a > 0 && on_b > 0, "both served: {on_a} and {on_b}");

    // One service stops: the next calls go to the other.
    stop_a.cancel();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let later: Vec<String> = (0..6).map(|n| format!("later{n}")).collect();
    for name in &later {
        let mut created = false;
        for _ in 0..5 {
            // A call already on its way to the stopped one fails once.
            if client.create_user(name, "h", "").await.is_ok() {
                created = true;
                break;
            }
        }
        assert!(created, "{name} created on the remaining service");
    }
    assert_eq!(held(&b, &later).await, later.len());
    stop_b.cancel();
    Ok(())
}

/// A burst of small calls over one connection, as a gateway makes when
/// thousands of clients connect at once (each upgrade reads its groups):
/// the production gRPC server takes them all, none failed. The server runs
/// on one thread of its own, so its connection task reads much of a burst
/// before any handler runs. In benches/edge-memory the server once sent
/// GOAWAY (ENHANCE_YOUR_CALM: h2's budget for small unread DATA frames,
/// half the connection window) and failed every call in flight; this test
/// did not reproduce that on its own, so it guards bursts in general, and
/// the larger connection window is the mitigation.
#[test]
fn a_burst_of_concurrent_calls_is_served_without_goaway() -> Result<()> {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let server = support::start_server(support::Backend::Embedded).await?;
            let grpc = server.running.as_ref().and_then(|r| r.grpc_addr);
            let _ = addr_tx.send(grpc);
            let _ = stop_rx.await;
            drop(server);
            Ok(())
        })
    });
    let grpc = addr_rx
        .recv()?
        .ok_or_else(|| anyhow::anyhow!("grpc addr"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let failed: Vec<String> = runtime.block_on(async move {
        let client = Arc::new(RepoClient::connect_lazy(&format!("http://{grpc}"))?);
        let calls = (0..4000i64).map(|user| {
            let client = client.clone();
            async move { client.list_user_groups(user + 1).await }
        });
        let results = futures::future::join_all(calls).await;
        anyhow::Ok(
            results
                .iter()
                .filter_map(|r| r.as_ref().err().map(ToString::to_string))
                .collect(),
        )
    })?;
    let _ = stop_tx.send(());
    server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    assert!(
        failed.is_empty(),
        "{} of 4000 failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    Ok(())
}
