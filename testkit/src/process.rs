//! Servers a test starts for itself (a TLS Redis, a private MariaDB, a
//! broker behind a TLS terminator): the port handed to them, and the guard
//! that stops them when the test ends, however it ends.

use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

/// A port free a moment ago, for a server that cannot bind port 0 itself.
/// Another process could take it in between, which fails the test loudly.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
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
