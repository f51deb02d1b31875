//! In-process state for standalone mode: the same semantics as Redis, in one
//! mutex-guarded map (standalone is one process; contention is not the limit).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gochat_proto::ids::Id;
use gochat_proto::keys::{RouteChange, SessionRoute};

use super::{DeviceRoute, StateResult, StateStore};

#[derive(Default)]
struct Inner {
    sessions: HashMap<Id, HashMap<String, (SessionRoute, Instant)>>,
    revoked: HashMap<String, Instant>,
    budgets: HashMap<String, (i64, u32)>,
    gateways: BTreeMap<String, (u32, Instant)>,
}

/// State kept in this process.
#[derive(Default)]
pub struct MemoryState {
    inner: Mutex<Inner>,
}

impl MemoryState {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic while holding the lock leaves plain maps behind: still usable.
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

#[async_trait]
impl StateStore for MemoryState {
    async fn ping(&self) -> StateResult<()> {
        Ok(())
    }

    async fn routes(&self, users: &[Id]) -> StateResult<HashMap<Id, Vec<DeviceRoute>>> {
        let now = Instant::now();
        Ok(self.with(|s| {
            users
                .iter()
                .filter_map(|u| {
                    let devices = s.sessions.get(u)?;
                    let live: Vec<DeviceRoute> = devices
                        .iter()
                        .filter(|(_, (_, expires))| *expires > now)
                        .map(|(d, (r, _))| (d.clone(), r.clone()))
                        .collect();
                    (!live.is_empty()).then_some((*u, live))
                })
                .collect()
        }))
    }

    async fn register_route(
        &self,
        user: Id,
        device_id: &str,
        route: &SessionRoute,
        ttl_secs: u64,
    ) -> StateResult<RouteChange> {
        let expires = Instant::now() + Duration::from_secs(ttl_secs);
        Ok(self.with(|s| {
            let devices = s.sessions.entry(user).or_default();
            if devices
                .get(device_id)
                .is_some_and(|(existing, _)| existing.generation > route.generation)
            {
                return RouteChange::Superseded;
            }
            match devices.insert(device_id.to_owned(), (route.clone(), expires)) {
                Some((old, _))
                    if (old.gateway_id.as_str(), old.core, old.conn_id)
                        != (route.gateway_id.as_str(), route.core, route.conn_id) =>
                {
                    RouteChange::Replaced(old)
                }
                _ => RouteChange::Registered,
            }
        }))
    }

    async fn unregister_route(&self, user: Id, device_id: &str, conn_id: u64) -> StateResult<()> {
        self.with(|s| {
            if let Some(devices) = s.sessions.get_mut(&user) {
                if devices
                    .get(device_id)
                    .is_some_and(|(r, _)| r.conn_id == conn_id)
                {
                    devices.remove(device_id);
                }
                if devices.is_empty() {
                    s.sessions.remove(&user);
                }
            }
        });
        Ok(())
    }

    async fn announce_gateway(
        &self,
        gateway_id: &str,
        cores: u32,
        ttl_secs: u64,
    ) -> StateResult<()> {
        let until = Instant::now() + Duration::from_secs(ttl_secs);
        self.with(|s| s.gateways.insert(gateway_id.to_owned(), (cores, until)));
        Ok(())
    }

    async fn gateways(&self) -> StateResult<Vec<(String, u32)>> {
        let now = Instant::now();
        Ok(self.with(|s| {
            s.gateways.retain(|_, (_, until)| *until > now);
            s.gateways
                .iter()
                .map(|(id, (cores, _))| (id.clone(), *cores))
                .collect()
        }))
    }

    async fn revoke_token(&self, jti: &str, ttl_secs: u64) -> StateResult<()> {
        let until = Instant::now() + Duration::from_secs(ttl_secs);
        self.with(|s| {
            let now = Instant::now();
            s.revoked.retain(|_, t| *t > now);
            s.revoked.insert(jti.to_owned(), until);
        });
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> StateResult<bool> {
        Ok(self.with(|s| s.revoked.get(jti).is_some_and(|t| *t > Instant::now())))
    }

    async fn allow(&self, name: &str, limit: u32, window_secs: u64) -> StateResult<bool> {
        let window =
            gochat_proto::ids::now_millis() / 1000 / i64::try_from(window_secs.max(1)).unwrap_or(1);
        Ok(self.with(|s| {
            if s.budgets.len() > 100_000 {
                s.budgets.retain(|_, (w, _)| *w == window);
            }
            let entry = s.budgets.entry(name.to_owned()).or_insert((window, 0));
            if entry.0 != window {
                *entry = (window, 0);
            }
            entry.1 += 1;
            entry.1 <= limit
        }))
    }
}
