//! A client's pulls, as docs/protocol.md §3.6 has a client do them: list
//! the conversations, then fetch each from the seq it holds contiguously.
//! They run beside the connection, so a slow or paused server never stops
//! the client from reading its socket.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use crate::rest::{Api, Entry};

/// What a background pull brings back.
pub struct Pulled {
    /// Whether the listing was asked for.
    pub asked_list: bool,
    /// `GET /conversations`, if asked for and it worked.
    pub listed: Option<Vec<(String, i64)>>,
    /// Each conversation pulled, or why not.
    pub pages: Vec<(String, anyhow::Result<Vec<Entry>>)>,
}

/// The highest n such that seqs 1..=n are all held.
pub fn contiguous(conv: &BTreeMap<i64, String>) -> i64 {
    let mut n = 0;
    for &seq in conv.keys() {
        if seq != n + 1 {
            break;
        }
        n = seq;
    }
    n
}

/// Lists (if `list`) and pulls every dirty or listed-and-behind
/// conversation from its contiguous prefix on.
pub async fn pull(
    api: Api,
    token: String,
    list: bool,
    held: HashMap<String, i64>,
    dirty: BTreeSet<String>,
    within: Duration,
) -> Pulled {
    let mut wanted: BTreeMap<String, i64> = dirty
        .into_iter()
        .map(|cid| {
            let after = held.get(&cid).copied().unwrap_or(0);
            (cid, after)
        })
        .collect();
    let listed = if list {
        match api.conversations(&token, within).await {
            Ok(listed) => {
                for (cid, last) in &listed {
                    let after = held.get(cid).copied().unwrap_or(0);
                    if *last > after {
                        wanted.insert(cid.clone(), after);
                    }
                }
                Some(listed)
            }
            Err(_) => None,
        }
    } else {
        None
    };
    let mut pages = Vec::new();
    for (cid, after) in wanted {
        let page = api.pull(&token, &cid, after, within).await;
        pages.push((cid, page));
    }
    Pulled {
        asked_list: list,
        listed,
        pages,
    }
}
