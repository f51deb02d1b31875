//! Servers a test starts for itself (a TLS Redis, a private MariaDB, a
//! broker behind a TLS terminator): the port handed to them, and the guard
//! that stops them when the test ends, however it ends.

use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

/// A loopback port free a moment ago, for a server that cannot bind port 0
/// itself. It comes from below the kernel's ephemeral range on purpose: a port
/// the kernel handed out for port 0 it may hand out again at once, to any
/// parallel test's outgoing connection or in-process server, and the server
/// started a moment later fails with "Address already in use". Below that
/// range only another random pick like this one can take it
/// (`deploy/free-port` does the same for the scripts).
pub fn free_port() -> Result<u16> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let first = (low / 2).max(1024);
    let room = u128::from(low.saturating_sub(first).max(1));
    for _ in 0..1000 {
        let offset = u16::try_from(uuid::Uuid::new_v4().as_u128() % room)?;
        let port = first + offset;
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return Ok(listener.local_addr()?.port());
        }
    }
    anyhow::bail!("no free port below {low}")
}

/// A `redis-server` that keeps nothing on disk, on loopback, with no plain
/// port yet: add `--port N` (or `--tls-port N` and the certificate flags).
pub fn redis_command() -> Command {
    let mut command = Command::new("redis-server");
    command.args([
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    command
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub port: u16,
}

impl Server {
    /// Starts `command` (its output discarded) as the server on `port`.
    pub fn spawn(mut command: Command, port: u16) -> Result<Self> {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {:?}", command.get_program()))?;
        Ok(Self { child, port })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
