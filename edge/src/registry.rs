//! The side thread: the one place the edge does control-plane I/O (session
//! registry writes, revocation checks, kicks), on a small tokio runtime of its
//! own, so worker cores never wait on Redis. Cores talk to it through a
//! [`RegistryHandle`]; it drains what is queued before exiting, so a drain's
//! deregistrations are not lost.

use std::sync::Arc;

use bytes::Bytes;
use gochat_proto::frames::ServerFrame;
use gochat_proto::ids::Id;
use gochat_proto::keys::{RouteChange, SessionRoute};

use crate::backend::{Registry, RegistryError};

const QUEUE: usize = 65_536;

enum Command {
    Register {
        user: Id,
        device: String,
        route: SessionRoute,
        /// Told when the entry is written (connect waits for it; refreshes do not).
        done: Option<flume::Sender<()>>,
    },
    Unregister {
        user: Id,
        device: String,
        conn_id: u64,
    },
    IsRevoked {
        jti: String,
        reply: flume::Sender<Result<bool, RegistryError>>,
    },
    /// Everything queued before it is done; then the thread ends.
    Stop,
}

/// A core's way to the side thread.
#[derive(Clone)]
pub(crate) struct RegistryHandle {
    tx: flume::Sender<Command>,
}

impl RegistryHandle {
    /// Registers or refreshes a connection (fire and forget: a lost refresh only
    /// delays routing until the next heartbeat).
    pub(crate) fn register(&self, user: Id, device: &str, route: SessionRoute) {
        self.submit(Command::Register {
            user,
            device: device.to_owned(),
            route,
            done: None,
        });
    }

    /// Registers a new connection and waits until the entry is written (or
    /// failed), so a client whose upgrade completed is already routable.
    pub(crate) async fn register_and_wait(&self, user: Id, device: &str, route: SessionRoute) {
        let (done, written) = flume::bounded(1);
        self.submit(Command::Register {
            user,
            device: device.to_owned(),
            route,
            done: Some(done),
        });
        let _ = written.recv_async().await;
    }

    /// Deregisters a closed connection.
    pub(crate) fn unregister(&self, user: Id, device: &str, conn_id: u64) {
        self.submit(Command::Unregister {
            user,
            device: device.to_owned(),
            conn_id,
        });
    }

    /// Asks whether a token was revoked; an unreachable registry is an error
    /// (the caller refuses the connection rather than trust a revoked token).
    pub(crate) async fn is_revoked(&self, jti: &str) -> Result<bool, RegistryError> {
        let (reply, answer) = flume::bounded(1);
        self.tx
            .try_send(Command::IsRevoked {
                jti: jti.to_owned(),
                reply,
            })
            .map_err(|_| RegistryError("registry queue full".into()))?;
        answer
            .recv_async()
            .await
            .map_err(|_| RegistryError("registry thread gone".into()))?
    }

    /// Ends the side thread once everything queued so far is done (after the
    /// cores drained, so their deregistrations go out first).
    pub(crate) fn stop(&self) {
        let _ = self.tx.send(Command::Stop);
    }

    fn submit(&self, command: Command) {
        if self.tx.try_send(command).is_err() {
            tracing::warn!("registry queue full: a session update was dropped");
        }
    }
}

/// Starts the side thread; it ends on [`RegistryHandle::stop`] (or once every
/// handle is dropped), after finishing what was queued.
pub(crate) fn spawn(
    registry: Arc<dyn Registry>,
    ttl_secs: u64,
) -> std::io::Result<(RegistryHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = flume::bounded::<Command>(QUEUE);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("edge-registry".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut tasks = tokio::task::JoinSet::new();
                while let Ok(command) = rx.recv_async().await {
                    if matches!(command, Command::Stop) {
                        break;
                    }
                    let registry = registry.clone();
                    tasks.spawn(async move { execute(registry.as_ref(), command, ttl_secs).await });
                    // Reap finished tasks as we go so the set stays small.
                    while tasks.try_join_next().is_some() {}
                }
                while tasks.join_next().await.is_some() {}
            });
        })?;
    Ok((RegistryHandle { tx }, thread))
}

async fn kick(registry: &dyn Registry, route: &SessionRoute) {
    let frame = ServerFrame::Kick {
        reason: "signed in elsewhere".into(),
    }
    .to_json();
    if let Err(e) = registry.kick(route, Bytes::from(frame)).await {
        tracing::warn!(error = %e, "superseded connection not kicked");
    }
}

async fn announce(registry: &dyn Registry, user: Id) {
    if let Err(e) = registry.presence_changed(user).await {
        tracing::debug!(error = %e, %user, "presence change not announced");
    }
}

async fn execute(registry: &dyn Registry, command: Command, ttl_secs: u64) {
    match command {
        Command::Register {
            user,
            device,
            route,
            done,
        } => {
            let change = registry.register(user, &device, &route, ttl_secs).await;
            // Dropping `done` wakes the waiting connect now: the entry is
            // written, and the kicks and announcements are not its business.
            let done_was_set = done.is_some();
            drop(done);
            let opened = match change {
                Ok(RouteChange::Registered) => true,
                // The newest login of a device wins; the loser is told and closed.
                Ok(RouteChange::Replaced(loser)) => {
                    kick(registry, &loser).await;
                    true
                }
                Ok(RouteChange::Superseded) => {
                    kick(registry, &route).await;
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, %user, "session not registered");
                    false
                }
            };
            // Only a new connection (a connect waits on `done`), not a heartbeat refresh.
            if opened && done_was_set {
                announce(registry, user).await;
            }
        }
        Command::Unregister {
            user,
            device,
            conn_id,
        } => match registry.unregister(user, &device, conn_id).await {
            Ok(()) => announce(registry, user).await,
            Err(e) => {
                tracing::warn!(error = %e, %user, "session not deregistered; it expires by itself")
            }
        },
        Command::IsRevoked { jti, reply } => {
            let _ = reply.send(registry.is_revoked(&jti).await);
        }
        Command::Stop => {}
    }
}
