//! What a chat client records for the checks: its sends, every ack, every
//! live `message` with the connection it came on, and its final view of each
//! conversation after pulling.

use std::collections::{BTreeMap, HashMap};

use tokio::time::Instant;

use crate::rest::Entry;

/// A send the client made.
pub struct Sent {
    /// When it was first written (or queued, when disconnected).
    pub first: Instant,
    /// The conversation it must land in.
    pub cid: String,
}

/// An `ack` as received.
pub struct Ack {
    /// Whose send.
    pub client_msg_id: String,
    /// Where it was stored.
    pub cid: String,
    /// Its seq.
    pub seq: i64,
    /// Its id.
    pub message_id: String,
    /// When it arrived.
    pub at: Instant,
}

/// A live `message` frame as received.
pub struct Delivery {
    /// The connection it came on (1 = the first).
    pub session: u32,
    /// Its conversation.
    pub cid: String,
    /// Its seq, id and sender.
    pub entry: Entry,
    /// When it arrived.
    pub at: Instant,
}

/// Everything a client saw, for the checks.
pub struct Report {
    /// Its user.
    pub user_id: i64,
    /// Its token (the checker pulls histories as a participant).
    pub token: String,
    /// Every send by client_msg_id.
    pub sent: HashMap<String, Sent>,
    /// Every ack, repeats included.
    pub acks: Vec<Ack>,
    /// Sends still without an ack at the end.
    pub unacked: Vec<String>,
    /// Sends answered with an error that is not "resend later".
    pub refused: Vec<String>,
    /// Every live `message`, in arrival order.
    pub deliveries: Vec<Delivery>,
    /// After the final pull: conversation → seq → message id.
    pub view: BTreeMap<String, BTreeMap<i64, String>>,
    /// The final `GET /conversations` (None if it failed).
    pub listed: Option<HashMap<String, i64>>,
    /// Connections opened.
    pub sessions: u32,
    /// Frames written again (no answer in time, a reconnect, or "resend later").
    pub resent: usize,
    /// "Resend later" answers by code.
    pub retry_codes: BTreeMap<String, usize>,
    /// `kick` frames received (the client never signs its device in twice,
    /// so each one was meant for another connection).
    pub kicks: Vec<String>,
    /// Anything odd worth printing (conflicting views, failed pulls).
    pub notes: Vec<String>,
}
