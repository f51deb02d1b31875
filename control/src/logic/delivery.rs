//! Delivery to live connections, shared by logic and task: look the users up in
//! the session registry, group their connections by (gateway, core) and produce
//! one downstream record per group, the frame serialised once (docs/design.md §7).
//! [`plan_delivery`] only works out the records, so a batch can send all of
//! its records together, in order. A record carries the trace of the
//! context it is made under (the message's, when traced).

use std::collections::{BTreeMap, HashSet};

use gochat_proto::keys::SessionRoute;

use bytes::Bytes;
use gochat_proto::ids::Id;
use gochat_proto::kafka::{DownstreamKey, Origin};
use gochat_proto::trace::TraceParent;

use crate::bus::{Bus, BusResult, DownstreamRecord};
use crate::state::StateStore;

/// Who was reached.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Users with at least one live connection.
    pub online: HashSet<Id>,
}

/// Looks up the users' connections (state) and sends `frame` to each of them,
/// except the connection `skip` (the sender's, which gets an ack instead).
pub async fn deliver(
    state: &dyn StateStore,
    bus: &dyn Bus,
    users: &[Id],
    skip: Option<&Origin>,
    frame: Bytes,
) -> Result<Delivered, DeliveryError> {
    let (records, delivered) = plan_delivery(state, users, skip, frame).await?;
    bus.send_downstream_many(&records).await?;
    Ok(delivered)
}

/// What [`deliver`] would send, without sending it: one record per
/// (gateway, core) holding connections of `users`, and who is online.
pub async fn plan_delivery(
    state: &dyn StateStore,
    users: &[Id],
    skip: Option<&Origin>,
    frame: Bytes,
) -> Result<(Vec<DownstreamRecord>, Delivered), DeliveryError> {
    let routes = state.routes(users).await?;
    let delivered = Delivered {
        online: routes.keys().copied().collect(),
    };
    let is_origin = |route: &SessionRoute| {
        skip.is_some_and(|o| {
            o.gateway_id == route.gateway_id && o.core == route.core && o.conn_id == route.conn_id
        })
    };
    let conns = routes
        .into_values()
        .flatten()
        .map(|(_, route)| route)
        .filter(|route| !is_origin(route));
    let records = per_core(conns, DownstreamKey::to, &frame);
    Ok((records, delivered))
}

/// A `kick` to every connection of `user` that authenticated with the
/// token tagged `token`, which the gateway then closes.
pub async fn close_token(
    state: &dyn StateStore,
    bus: &dyn Bus,
    user: Id,
    token: u64,
    frame: Bytes,
) -> Result<(), DeliveryError> {
    let conns = routes_of(state, user, |_, route| route.token == token).await?;
    let records = per_core(conns, |conns| DownstreamKey::LoggedOut { conns }, &frame);
    Ok(bus.send_downstream_many(&records).await?)
}

/// Sends `frame` to every connection of `user` except those of `device`
/// (the one that made the change the frame tells of).
pub async fn to_other_devices(
    state: &dyn StateStore,
    bus: &dyn Bus,
    user: Id,
    device: &str,
    frame: Bytes,
) -> Result<(), DeliveryError> {
    let conns = routes_of(state, user, |d, _| d != device).await?;
    let records = per_core(conns, DownstreamKey::to, &frame);
    Ok(bus.send_downstream_many(&records).await?)
}

/// The connections of `user` whose (device, route) `keep` accepts.
async fn routes_of(
    state: &dyn StateStore,
    user: Id,
    keep: impl Fn(&str, &SessionRoute) -> bool,
) -> Result<Vec<SessionRoute>, DeliveryError> {
    let routes = state.routes(&[user]).await?;
    Ok(routes
        .into_values()
        .flatten()
        .filter(|(device, route)| keep(device, route))
        .map(|(_, route)| route)
        .collect())
}

/// One record per (gateway, core) holding some of `routes`, keyed by
/// `key(the connection ids there)`, each carrying `frame`.
pub fn per_core(
    routes: impl IntoIterator<Item = SessionRoute>,
    key: impl Fn(Vec<u64>) -> DownstreamKey,
    frame: &Bytes,
) -> Vec<DownstreamRecord> {
    let mut by_core: BTreeMap<(String, u32), Vec<u64>> = BTreeMap::new();
    for route in routes {
        by_core
            .entry((route.gateway_id, route.core))
            .or_default()
            .push(route.conn_id);
    }
    by_core
        .into_iter()
        .map(|((gateway_id, core), conns)| DownstreamRecord {
            gateway_id,
            core,
            key: key(conns),
            frame: frame.clone(),
            trace: TraceParent::current(),
        })
        .collect()
}

/// The record that answers one send (its ack or refusal) on the connection
/// it came from; the `a` key frees the send's slot in the core's window.
pub fn origin_record(origin: &Origin, frame: Bytes) -> DownstreamRecord {
    DownstreamRecord {
        gateway_id: origin.gateway_id.clone(),
        core: origin.core,
        key: answer_key(origin, true),
        frame,
        trace: TraceParent::current(),
    }
}

/// Sends a frame to the connection a client frame came from; `answers_send`
/// when it is the answer to a `send`.
pub async fn to_origin(
    bus: &dyn Bus,
    origin: &Origin,
    frame: Bytes,
    answers_send: bool,
) -> BusResult<()> {
    bus.send_downstream(
        &origin.gateway_id,
        origin.core,
        &answer_key(origin, answers_send),
        frame,
    )
    .await
}

fn answer_key(origin: &Origin, answers_send: bool) -> DownstreamKey {
    if answers_send {
        DownstreamKey::Answer {
            conn: origin.conn_id,
        }
    } else {
        DownstreamKey::to(vec![origin.conn_id])
    }
}

/// A registry lookup or a produce failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Session registry.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// Producer.
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
}
