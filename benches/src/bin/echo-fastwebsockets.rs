//! A WebSocket echo server on fastwebsockets (hyper 1 upgrade, one tokio
//! thread): one of the peers `benches/edge-peers` measures `gochat echo`
//! against with the same load generator. Not part of GoChat.
//!
//! Usage: `echo-fastwebsockets [ADDR]` (default 127.0.0.1:9002).

use fastwebsockets::upgrade::{UpgradeFut, upgrade};
use fastwebsockets::{FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("echo-fastwebsockets: ws://{}/", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let service = service_fn(upgrade_to_echo);
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn upgrade_to_echo(
    mut request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, websocket) = upgrade(&mut request)?;
    tokio::spawn(async move {
        let _ = echo(websocket).await;
    });
    Ok(response)
}

/// Whole messages back as they came, until the client closes (fastwebsockets
/// answers pings and closes itself by default).
async fn echo(websocket: UpgradeFut) -> Result<(), WebSocketError> {
    let mut websocket = FragmentCollector::new(websocket.await?);
    loop {
        let frame = websocket.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => websocket.write_frame(frame).await?,
            _ => {}
        }
    }
}
