//! The userspace TCP proxy the checker puts between control and each of its
//! dependencies (MariaDB, Redis, the broker). It owns the network faults:
//! pass, partition (refuse new connections and cut the live ones), blackhole
//! (accept, but hold every byte until healed, as a network that drops packets
//! and later delivers the retransmissions), and added latency per direction.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Refuse new connections (accept and close at once, as a RST would) and
    /// cut every live one.
    Cut,
    /// Accept, connect, but forward nothing until healed; bytes are held,
    /// not dropped, so TCP streams stay consistent.
    Blackhole,
}

/// The proxy's current setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Pass, cut or blackhole.
    pub mode: Mode,
    /// Added to every chunk in each direction.
    pub latency: Duration,
}

impl Setting {
    /// Forward everything at once.
    pub const PASS: Setting = Setting {
        mode: Mode::Pass,
        latency: Duration::ZERO,
    };
}

/// One proxy: a listener on loopback forwarding to `upstream`.
pub struct Proxy {
    addr: SocketAddr,
    setting: watch::Sender<Setting>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Binds a free loopback port and forwards it to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Self::on(listener, upstream)
    }

    /// Forwards an already bound `listener` (the broker's proxy port must be
    /// known before the broker starts: it is what the broker advertises).
    pub fn on(listener: TcpListener, upstream: SocketAddr) -> Result<Self> {
        let addr = listener.local_addr().context("proxy address")?;
        let (setting, rx) = watch::channel(Setting::PASS);
        let accept = tokio::spawn(accept_loop(listener, upstream, rx));
        Ok(Self {
            addr,
            setting,
            accept,
        })
    }

    /// Where clients of the proxied service connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes what the proxy does, for new and live connections alike.
    pub fn set(&self, setting: Setting) {
        self.setting.send_replace(setting);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, rx: watch::Receiver<Setting>) {
    loop {
        let inbound = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // Out of descriptors or a reset during accept: try again shortly.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if rx.borrow().mode == Mode::Cut {
            drop(inbound);
            continue;
        }
        tokio::spawn(relay(inbound, upstream, rx.clone()));
    }
}

/// One proxied connection, until either side closes or the proxy cuts it.
async fn relay(inbound: TcpStream, upstream: SocketAddr, mut rx: watch::Receiver<Setting>) {
    let outbound =
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream)).await {
            Ok(Ok(s)) => s,
            // The service is down (killed): the client sees its connection close,
            // as it would see a refused connect without the proxy.
            _ => return,
        };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (ri, wi) = inbound.into_split();
    let (ro, wo) = outbound.into_split();
    let both = futures::future::join(pump(ri, wo, rx.clone()), pump(ro, wi, rx.clone()));
    let cut = async {
        loop {
            if rx.borrow_and_update().mode == Mode::Cut {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    // Dropping the halves closes both sockets: that is the cut.
    tokio::select! {
        _ = both => {}
        _ = cut => {}
    }
}

/// One direction: read as fast as the source sends, deliver each chunk
/// `latency` after it was read (in order), and hold delivery while
/// blackholed.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, rx: watch::Receiver<Setting>) {
    let (tx, mut queue) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read_rx = rx.clone();
    let read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let due = Instant::now() + read_rx.borrow().latency;
            if tx.send((due, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let mut write_rx = rx;
    let write = async move {
        while let Some((due, bytes)) = queue.recv().await {
            tokio::time::sleep_until(due).await;
            loop {
                if write_rx.borrow_and_update().mode != Mode::Blackhole {
                    break;
                }
                if write_rx.changed().await.is_err() {
                    return;
                }
            }
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        // The source closed: pass the half-close on.
        let _ = to.shutdown().await;
    };
    futures::future::join(read, write).await;
}
