//! The key of a downstream record: what the receiving edge core does with
//! the frame in the value. Plain text, so the edge never parses JSON on the
//! way down:
//!
//! | key            | meaning |
//! |----------------|---------|
//! | `17,4242`      | write the frame to these connections |
//! | `!17`          | write it, then close the connection quietly (a superseded login's `kick`) |
//! | `a17`          | write it to connection 17: it answers (ack or error) one `send` that came from there |
//! | `L17,42`       | write it, then close (the token these connections used was logged out) |
//! | `r88` `r88~17` | write it to every connection in group 88's room on this core (except 17, the sender's, which gets an ack) |
//! | `+88:17,4242`  | these connections joined group 88's room (no frame) |
//! | `-88:17,4242`  | they left it (left or removed from the group) |
//! | `x88`          | group 88 is gone: empty its room |
//!
//! A group's room on a core is the core's connections of the group's members,
//! filled when a connection opens and kept current by the `+`/`-`/`x` records
//! (docs/design.md, group rooms). An `a` answer also gives back the slot the
//! send held in its core's window of unanswered sends (docs/design.md,
//! admission control).

/// What a downstream record asks of the core that owns its partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownstreamKey {
    /// Write the frame to these connections.
    Conns {
        /// Connection ids on the core.
        conns: Vec<u64>,
        /// Close them after the frame.
        close_after: bool,
    },
    /// Write the frame to the connection a send came from: its ack or its
    /// refusal.
    Answer {
        /// Connection id on the core.
        conn: u64,
    },
    /// Write the frame, then close: their token was logged out.
    LoggedOut {
        /// Connection ids on the core.
        conns: Vec<u64>,
    },
    /// Write the frame to the group's room on the core.
    Room {
        /// The group.
        group: i64,
        /// The sender's connection, which gets an ack instead.
        skip: Option<u64>,
    },
    /// Connections joined (`joined`) or left the group's room.
    Membership {
        /// The group.
        group: i64,
        /// Connection ids on the core.
        conns: Vec<u64>,
        /// Joined, or left.
        joined: bool,
    },
    /// The group is gone.
    DropRoom {
        /// The group.
        group: i64,
    },
}

impl DownstreamKey {
    /// Delivers to `conns`.
    pub fn to(conns: Vec<u64>) -> Self {
        Self::Conns {
            conns,
            close_after: false,
        }
    }

    /// Delivers to one connection and closes it.
    pub fn kick(conn: u64) -> Self {
        Self::Conns {
            conns: vec![conn],
            close_after: true,
        }
    }

    /// The record key bytes.
    pub fn encode(&self) -> String {
        match self {
            Self::Conns { conns, close_after } => {
                let mut out = String::with_capacity(conns.len() * 8 + 1);
                if *close_after {
                    out.push('!');
                }
                push_list(&mut out, conns);
                out
            }
            Self::Answer { conn } => format!("a{conn}"),
            Self::LoggedOut { conns } => {
                let mut out = String::from("L");
                push_list(&mut out, conns);
                out
            }
            Self::Room { group, skip: None } => format!("r{group}"),
            Self::Room {
                group,
                skip: Some(skip),
            } => format!("r{group}~{skip}"),
            Self::Membership {
                group,
                conns,
                joined,
            } => {
                let mut out = format!("{}{group}:", if *joined { '+' } else { '-' });
                push_list(&mut out, conns);
                out
            }
            Self::DropRoom { group } => format!("x{group}"),
        }
    }

    /// Parses record key bytes; `None` if malformed.
    pub fn decode(key: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(key).ok()?;
        let group = |s: &str| s.parse::<i64>().ok().filter(|g| *g > 0);
        match text.as_bytes().first() {
            Some(b'r') => {
                let rest = &text[1..];
                Some(match rest.split_once('~') {
                    Some((g, skip)) => Self::Room {
                        group: group(g)?,
                        skip: Some(skip.parse().ok()?),
                    },
                    None => Self::Room {
                        group: group(rest)?,
                        skip: None,
                    },
                })
            }
            Some(sign @ (b'+' | b'-')) => {
                let (g, conns) = text[1..].split_once(':')?;
                Some(Self::Membership {
                    group: group(g)?,
                    conns: parse_list(conns)?,
                    joined: *sign == b'+',
                })
            }
            Some(b'a') => Some(Self::Answer {
                conn: text[1..].parse().ok()?,
            }),
            Some(b'L') => Some(Self::LoggedOut {
                conns: parse_list(&text[1..])?,
            }),
            Some(b'x') => Some(Self::DropRoom {
                group: group(&text[1..])?,
            }),
            Some(b'!') => Some(Self::Conns {
                conns: parse_list(&text[1..])?,
                close_after: true,
            }),
            _ => Some(Self::to(parse_list(text)?)),
        }
    }
}

fn push_list(out: &mut String, ids: &[u64]) {
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
}

fn parse_list(text: &str) -> Option<Vec<u64>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_round_trips() {
        let keys = [
            DownstreamKey::to(vec![1, 42, u64::MAX]),
            DownstreamKey::to(vec![]),
            DownstreamKey::kick(7),
            DownstreamKey::Room {
                group: 88,
                skip: None,
            },
            DownstreamKey::Room {
                group: 88,
                skip: Some(17),
            },
            DownstreamKey::Membership {
                group: 88,
                conns: vec![17, 4242],
                joined: true,
            },
            DownstreamKey::Membership {
                group: 88,
                conns: vec![17],
                joined: false,
            },
            DownstreamKey::DropRoom { group: 88 },
            DownstreamKey::Answer { conn: 4242 },
            DownstreamKey::LoggedOut {
                conns: vec![17, 42],
            },
        ];
        for key in keys {
            assert_eq!(DownstreamKey::decode(key.encode().as_bytes()), Some(key));
        }
        assert_eq!(DownstreamKey::kick(7).encode(), "!7");
        assert_eq!(
            DownstreamKey::Room {
                group: 88,
                skip: Some(17)
            }
            .encode(),
            "r88~17"
        );
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            &b"1,,2"[..],
            b"x",
            b"r",
            b"r0",
            b"r-5",
            b"r88~",
            b"+88",
            b"+88:1,,2",
            b"-:1",
            b"x88:1",
            b"L1,,2",
            b"a",
            b"a1,2",
            b"a-1",
            b"\xff",
        ] {
            assert_eq!(DownstreamKey::decode(bad), None, "{bad:?}");
        }
    }
}
