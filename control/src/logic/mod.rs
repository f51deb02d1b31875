//! The logic service: every rule of the product lives here, as a typed method
//! on [`Logic`] — accounts ([`accounts`]), friends and blocks ([`friends`]),
//! groups ([`groups`], administered in [`group_admin`]),
//! conversations and history ([`conversations`]), admin push ([`admin`]),
//! uploads ([`media`]), and the send path ([`pipeline`], which hands drafts to
//! [`MessageWriter`]; every send enters through the process's one
//! [`SendQueue`]). The REST API ([`http`]), the gRPC face and the upstream
//! consumer ([`consumer`]) only parse, call and map the result.

mod accounts;
mod admin;
pub mod auth;
mod batcher;
mod changes;
pub mod consumer;
mod conversations;
pub mod delivery;
mod devices;
mod error;
mod facts;
mod friends;
mod group_admin;
mod groups;
pub mod http;
mod media;
mod metadata;
mod pipeline;
mod rooms;
mod routing;
mod search;
mod spans;
mod writer;

pub use accounts::{NewAccount, ProfilePatch, Session, UserProfile};
pub use admin::SystemPush;
pub use batcher::{BatchResult, SendLoop, SendQueue};
pub use changes::Change;
pub use conversations::{History, HistoryQuery, Reads, SettingsChange};
pub use error::{LogicError, LogicResult, to_status};
pub use friends::{Befriended, FriendPolicy};
pub use group_admin::{JoinPolicy, Joined};
pub use groups::{GroupEdit, MemberRole, NewGroup};
pub use media::{MediaFile, shown_inline};
pub use pipeline::Send;
pub use routing::message_frame;
pub use search::MessageSearch;
pub use writer::{MessageWriter, ack_of};

use std::sync::Arc;

use crate::bus::{Bus, BusError};
use crate::config::{AuthConfig, LogicConfig, UploadsConfig};
use crate::repo::Repo;
use crate::state::StateStore;
use auth::{AuthError, Authenticator};

/// The logic service: everything the REST handlers, the gRPC face and the
/// consumer share. Its parts are private so that no handler can reach past a
/// rule into storage.
pub struct Logic {
    repo: Arc<dyn Repo>,
    state: Arc<dyn StateStore>,
    bus: Arc<dyn Bus>,
    writer: Arc<MessageWriter>,
    auth: Authenticator,
    config: LogicConfig,
    admin_usernames: Vec<String>,
    admin_user_ids: Vec<i64>,
    facts: facts::Facts,
    upload_types: Vec<String>,
    media_links: media::MediaLinks,
}

impl Logic {
    /// Assembles the service on the writer it shares with the task service.
    pub fn new(writer: Arc<MessageWriter>, auth_config: &AuthConfig) -> Result<Self, AuthError> {
        Ok(Self {
            repo: writer.repo.clone(),
            state: writer.state.clone(),
            bus: writer.bus.clone(),
            config: writer.config.clone(),
            writer,
            auth: Authenticator::new(auth_config)?,
            admin_usernames: auth_config.admin_usernames.clone(),
            admin_user_ids: auth_config.admin_user_ids.clone(),
            facts: facts::Facts::default(),
            upload_types: UploadsConfig::default().allowed_types,
            media_links: media::MediaLinks::new(
                &auth_config.jwt_secret,
                UploadsConfig::default().url_lifetime_secs,
            ),
        })
    }

    /// The same service taking uploads of `config.allowed_types` only, its
    /// media links valid for `config.url_lifetime_secs`.
    pub fn with_uploads(self, config: &UploadsConfig, auth_config: &AuthConfig) -> Self {
        Self {
            upload_types: config.allowed_types.clone(),
            media_links: media::MediaLinks::new(&auth_config.jwt_secret, config.url_lifetime_secs),
            ..self
        }
    }

    /// Sends a frame to the one connection a client frame came through;
    /// `answers_send` when it answers a `send` (see [`delivery::to_origin`]).
    pub async fn answer(
        &self,
        origin: &gochat_proto::kafka::Origin,
        frame: bytes::Bytes,
        answers_send: bool,
    ) -> Result<(), BusError> {
        delivery::to_origin(self.bus.as_ref(), origin, frame, answers_send).await
    }

    /// How many upstream records the consumer handles at once.
    pub fn consume_in_flight(&self) -> usize {
        self.config.consume_in_flight
    }
}
