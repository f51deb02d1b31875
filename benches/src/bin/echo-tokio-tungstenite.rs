//! A WebSocket echo server on tokio-tungstenite (one tokio thread): one of
//! the peers `benches/edge-peers` measures `gochat echo` against with the
//! same load generator. Not part of GoChat.
//!
//! Usage: `echo-tokio-tungstenite [ADDR]` (default 127.0.0.1:9003).

use futures::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("echo-tokio-tungstenite: ws://{}/", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let _ = echo(stream).await;
        });
    }
}

/// Messages back as they came: the frames one read brought are written
/// with one flush (`feed` each, then `flush`), as a careful tungstenite
/// server does; a ping's pong goes out with them.
async fn echo(stream: tokio::net::TcpStream) -> Result<(), Error> {
    let mut websocket = tokio_tungstenite::accept_async(stream).await?;
    while let Some(message) = websocket.next().await {
        let mut message = Some(message?);
        while let Some(current) = message.take() {
            if current.is_text() || current.is_binary() {
                websocket.feed(current).await?;
            }
            // `next` is cancel-safe: a frame not complete yet stays buffered.
            if let Some(Some(next)) = websocket.next().now_or_never() {
                message = Some(next?);
            }
        }
        websocket.flush().await?;
    }
    Ok(())
}
