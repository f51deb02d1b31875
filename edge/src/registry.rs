//! The side thread: the one place the edge does control-plane I/O (session
//! registry writes, revocation checks, kicks, group-room fills, the gateway's
//! announcements in the gateway directory), on a small tokio runtime of its
//! own, so worker cores never wait on Redis. Cores talk to it through a
//! [`RegistryHandle`]; it drains what is queued before exiting, so a drain's
//! deregistrations are not lost.
//!
//! The registry can lose everything (Redis restarted without persistence):
//! then no message finds this gateway's connections until each refreshes its
//! entry. The thread checks every few seconds that the gateway's own
//! announcement is still there; when it is gone it announces again and bumps
//! the registry epoch, and each core registers all its connections anew
//! (`core::heartbeat_loop`), so live delivery resumes within seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
        /// A new connection waits for its entry to be written and gets the
        /// user's groups (its rooms); refreshes do not wait.
        done: Option<flume::Sender<Result<Option<Vec<i64>>, RegistryError>>>,
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
    epoch: Arc<AtomicU64>,
}

impl RegistryHandle {
    /// Bumped each time the registry was found to have lost this gateway's
    /// entries: a core seeing a new value registers its connections again.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

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

    /// Registers a new connection, waits until the entry is written (or
    /// failed), so a client whose upgrade completed is already routable, and
    /// answers the user's group ids (the connection's rooms; `None`: no
    /// such user).
    pub(crate) async fn register_and_wait(
        &self,
        user: Id,
        device: &str,
        route: SessionRoute,
    ) -> Result<Option<Vec<i64>>, RegistryError> {
        let (done, written) = flume::bounded(1);
        self.tx
            .try_send(Command::Register {
                user,
                device: device.to_owned(),
                route,
                done: Some(done),
            })
            .map_err(|_| RegistryError("registry queue full".into()))?;
        written
            .recv_async()
            .await
            .map_err(|_| RegistryError("registry thread gone".into()))?
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

/// This gateway, as it announces itself in the gateway directory (so large
/// groups' messages reach its cores' rooms).
pub(crate) struct Announcement {
    /// The gateway id.
    pub(crate) gateway_id: String,
    /// Its worker cores (downstream partitions).
    pub(crate) cores: u32,
}

/// Starts the side thread; it ends on [`RegistryHandle::stop`] (or once every
/// handle is dropped), after finishing what was queued. With an
/// `announcement`, it returns once the gateway's first announcement was
/// tried (so a gateway is in the directory before it accepts anyone) and
/// repeats it every third of `ttl_secs`.
pub(crate) fn spawn(
    registry: Arc<dyn Registry>,
    ttl_secs: u64,
    announcement: Option<Announcement>,
) -> std::io::Result<(RegistryHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = flume::bounded::<Command>(QUEUE);
    let (announced, first_announcement) = flume::bounded::<()>(1);
    let expect_announcement = announcement.is_some();
    let epoch = Arc::new(AtomicU64::new(0));
    let bump = epoch.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("edge-registry".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut every = tokio::time::interval(Duration::from_secs((ttl_secs / 3).max(1)));
                let mut check =
                    tokio::time::interval(Duration::from_secs((ttl_secs / 3).clamp(1, 5)));
                let mut tasks = tokio::task::JoinSet::new();
                let queued = metrics::gauge!("gochat_edge_registry_queue_depth");
                loop {
                    let command = tokio::select! {
                        command = rx.recv_async() => command,
                        _ = every.tick(), if announcement.is_some() => {
                            if let Some(a) = &announcement {
                                announce_gateway(registry.as_ref(), a, ttl_secs).await;
                            }
                            let _ = announced.try_send(());
                            continue;
                        }
                        _ = check.tick(), if announcement.is_some() => {
                            if let Some(a) = &announcement
                                && lost_entries(registry.as_ref(), a, ttl_secs).await
                            {
                                bump.fetch_add(1, Ordering::AcqRel);
                            }
                            continue;
                        }
                    };
                    let Ok(command) = command else { break };
                    queued.set(rx.len() as f64);
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
    if expect_announcement {
        let _ = first_announcement.recv_timeout(Duration::from_secs(10));
    }
    Ok((RegistryHandle { tx, epoch }, thread))
}

/// True when the gateway's announcement is gone (announced again here):
/// the registry lost its data, and the gateway's session entries with it.
async fn lost_entries(registry: &dyn Registry, a: &Announcement, ttl_secs: u64) -> bool {
    match registry.gateway_listed(&a.gateway_id).await {
        Ok(true) => false,
        Ok(false) => {
            tracing::warn!(
                gateway = %a.gateway_id,
                "the session registry lost this gateway's entries (restarted empty?); \
                 registering every connection again"
            );
            announce_gateway(registry, a, ttl_secs).await;
            true
        }
        // Unreachable now: checked again at the next tick.
        Err(_) => false,
    }
}

async fn announce_gateway(registry: &dyn Registry, a: &Announcement, ttl_secs: u64) {
    if let Err(e) = registry
        .announce_gateway(&a.gateway_id, a.cores, ttl_secs)
        .await
    {
        tracing::warn!(error = %e, gateway = %a.gateway_id, "gateway not announced; will retry");
    }
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
            let started = std::time::Instant::now();
            let change = registry.register(user, &device, &route, ttl_secs).await;
            metrics::histogram!("gochat_edge_registry_write_seconds", "op" => "register")
                .record(started.elapsed().as_secs_f64());
            // Answering `done` lets the waiting connect go on: the entry is
            // written and its rooms are known; the kicks and announcements
            // are not its business.
            let done_was_set = done.is_some();
            if let Some(done) = done {
                let _ = done.send(registry.groups_of(user).await);
            }
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
        } => {
            let started = std::time::Instant::now();
            let done = registry.unregister(user, &device, conn_id).await;
            metrics::histogram!("gochat_edge_registry_write_seconds", "op" => "unregister")
                .record(started.elapsed().as_secs_f64());
            match done {
                Ok(()) => announce(registry, user).await,
                Err(e) => {
                    tracing::warn!(error = %e, %user, "session not deregistered; it expires by itself")
                }
            }
        }
        Command::IsRevoked { jti, reply } => {
            let _ = reply.send(registry.is_revoked(&jti).await);
        }
        Command::Stop => {}
    }
}
