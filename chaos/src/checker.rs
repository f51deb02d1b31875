//! The checks, run after a scenario healed and every client pulled: what the
//! clients saw (acks, live deliveries, their final views) against the stored
//! histories. Each finding is counted under one name of the summary and
//! explained in a detail line, so a failure says which message and where.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use gochat_proto::ids::{Id, group_conversation_id, single_conversation_id};

use crate::report::Report;
use crate::rest::Entry;

/// How many details of each kind are kept (the counts are exact).
const DETAILS_PER_KIND: usize = 5;

/// What the checks found; every field but `refused` and `unacked` is a
/// safety violation, those two are liveness failures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Acked messages not stored as acked.
    pub lost: usize,
    /// Messages stored more than once, or delivered live more than once to a client.
    pub duplicated: usize,
    /// Live deliveries of a conversation out of seq order on one connection.
    pub reordered: usize,
    /// Seqs missing from a conversation's history.
    pub gaps: usize,
    /// Live deliveries that are not the stored message at that seq.
    pub phantom: usize,
    /// (client, conversation) pairs whose view after pulling is not the history.
    pub unconverged: usize,
    /// Acks of another user's send, live messages of a conversation the
    /// client is not in, or a `kick` of a client's only connection: frames
    /// that reached the wrong connection.
    pub misrouted: usize,
    /// Sends never acked.
    pub unacked: usize,
    /// Sends refused with an error that is not "resend later".
    pub refused: usize,
}

impl Counts {
    /// Anything wrong at all?
    pub fn failed(&self) -> bool {
        *self != Counts::default()
    }

    /// Adds another scenario's counts.
    pub fn add(&mut self, o: &Counts) {
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.gaps += o.gaps;
        self.phantom += o.phantom;
        self.unconverged += o.unconverged;
        self.misrouted += o.misrouted;
        self.unacked += o.unacked;
        self.refused += o.refused;
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lost={} duplicated={} reordered={} gaps={} phantom={} unconverged={} misrouted={} unacked={} refused={}",
            self.lost,
            self.duplicated,
            self.reordered,
            self.gaps,
            self.phantom,
            self.unconverged,
            self.misrouted,
            self.unacked,
            self.refused
        )
    }
}

/// Counts and the first few explanations of each kind.
#[derive(Default)]
pub struct Findings {
    /// The counts.
    pub counts: Counts,
    /// `kind: what` lines.
    pub details: Vec<String>,
    per_kind: HashMap<&'static str, usize>,
}

impl Findings {
    fn note(&mut self, kind: &'static str, what: String) {
        let n = self.per_kind.entry(kind).or_default();
        *n += 1;
        if *n <= DETAILS_PER_KIND {
            self.details.push(format!("{kind}: {what}"));
        }
    }
}

/// The conversations a client takes part in: the group and its 1:1s.
fn conversations_of(report: &Report, group_id: i64, users: &[i64]) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = users
        .iter()
        .filter(|&&u| u != report.user_id)
        .map(|&u| single_conversation_id(Id(report.user_id), Id(u)))
        .collect();
    set.insert(group_conversation_id(Id(group_id)));
    set
}

/// Every conversation the clients touched, with a client that may read it
/// (one taking part in it; a conversation none of them is in — only a
/// misrouted frame names it — is left out).
pub fn touched(reports: &[Report], group_id: i64) -> BTreeMap<String, usize> {
    let users: Vec<i64> = reports.iter().map(|r| r.user_id).collect();
    let members: Vec<BTreeSet<String>> = reports
        .iter()
        .map(|r| conversations_of(r, group_id, &users))
        .collect();
    let mut out = BTreeMap::new();
    for r in reports {
        let cids = r
            .sent
            .values()
            .map(|s| &s.cid)
            .chain(r.acks.iter().map(|a| &a.cid))
            .chain(r.deliveries.iter().map(|d| &d.cid))
            .chain(r.view.keys())
            .chain(r.listed.iter().flat_map(|l| l.keys()));
        for cid in cids {
            if let Some(reader) = members.iter().position(|m| m.contains(cid)) {
                out.entry(cid.clone()).or_insert(reader);
            }
        }
    }
    out
}

/// Runs every check.
pub fn check(
    reports: &[Report],
    histories: &BTreeMap<String, Vec<Entry>>,
    group_id: i64,
) -> Findings {
    let mut f = Findings::default();
    let by_seq: HashMap<&str, BTreeMap<i64, &Entry>> = histories
        .iter()
        .map(|(cid, h)| (cid.as_str(), h.iter().map(|e| (e.seq, e)).collect()))
        .collect();
    let stored = |cid: &str, seq: i64| by_seq.get(cid).and_then(|m| m.get(&seq)).copied();
    let users: Vec<i64> = reports.iter().map(|r| r.user_id).collect();

    // Gaps and stored duplicates, per conversation.
    for (cid, h) in histories {
        let seqs: BTreeSet<i64> = h.iter().map(|e| e.seq).collect();
        let max = seqs.iter().next_back().copied().unwrap_or(0);
        let missing: Vec<i64> = (1..=max).filter(|s| !seqs.contains(s)).collect();
        if !missing.is_empty() {
            f.counts.gaps += missing.len();
            f.note(
                "gap",
                format!("{cid}: seqs {missing:?} missing of 1..={max}"),
            );
        }
        if seqs.len() != h.len() {
            f.counts.duplicated += h.len() - seqs.len();
            f.note(
                "duplicated",
                format!("{cid}: a seq appears twice in history"),
            );
        }
        let mut stored_as: HashMap<(&str, &str), Vec<i64>> = HashMap::new();
        for e in h {
            if let Some(cmid) = &e.client_msg_id {
                stored_as.entry((&e.from, cmid)).or_default().push(e.seq);
            }
        }
        for ((from, cmid), at) in stored_as {
            if at.len() > 1 {
                f.counts.duplicated += at.len() - 1;
                f.note(
                    "duplicated",
                    format!("{cid}: {from}'s {cmid} stored at seqs {at:?}"),
                );
            }
        }
    }

    for r in reports {
        // Lost: every ack names the stored message, in the right conversation.
        let mut lost: BTreeSet<&str> = BTreeSet::new();
        let mine = conversations_of(r, group_id, &users);
        for a in &r.acks {
            let Some(sent) = r.sent.get(&a.client_msg_id) else {
                // Not this client's send: someone else's answer reached it.
                f.counts.misrouted += 1;
                f.note(
                    "misrouted",
                    format!(
                        "user {} got the ack of a send it never made: {} {} seq {} id {}",
                        r.user_id, a.client_msg_id, a.cid, a.seq, a.message_id
                    ),
                );
                continue;
            };
            let expected = Some(sent.cid.as_str());
            let at = stored(&a.cid, a.seq);
            let ok = expected == Some(a.cid.as_str())
                && at.is_some_and(|e| {
                    e.message_id == a.message_id
                        && e.client_msg_id.as_deref() == Some(a.client_msg_id.as_str())
                });
            if !ok && lost.insert(&a.client_msg_id) {
                f.note(
                    "lost",
                    format!(
                        "user {} {} acked as {} seq {} id {} (expected in {:?}); stored there: {:?}",
                        r.user_id, a.client_msg_id, a.cid, a.seq, a.message_id, expected, at
                    ),
                );
            }
        }
        f.counts.lost += lost.len();

        // Live deliveries: no duplicate, in order per connection, all stored.
        let mut times: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut order: HashMap<(u32, &str), (i64, BTreeSet<i64>)> = HashMap::new();
        for d in &r.deliveries {
            times
                .entry(&d.entry.message_id)
                .or_default()
                .push(d.session);
            let (max, seen) = order.entry((d.session, &d.cid)).or_default();
            if seen.insert(d.entry.seq) && d.entry.seq < *max {
                f.counts.reordered += 1;
                f.note(
                    "reordered",
                    format!(
                        "user {} session {} {}: seq {} after seq {}",
                        r.user_id, d.session, d.cid, d.entry.seq, max
                    ),
                );
            }
            *max = (*max).max(d.entry.seq);
            if !mine.contains(&d.cid) {
                f.counts.misrouted += 1;
                f.note(
                    "misrouted",
                    format!(
                        "user {} got {} seq {} from user {}: not its conversation",
                        r.user_id, d.cid, d.entry.seq, d.entry.from
                    ),
                );
            }
            let real = stored(&d.cid, d.entry.seq);
            if real.is_none_or(|e| e.message_id != d.entry.message_id) {
                f.counts.phantom += 1;
                f.note(
                    "phantom",
                    format!(
                        "user {} got {} seq {} id {}; stored: {:?}",
                        r.user_id, d.cid, d.entry.seq, d.entry.message_id, real
                    ),
                );
            }
        }
        for (id, sessions) in times {
            if sessions.len() > 1 {
                f.counts.duplicated += sessions.len() - 1;
                f.note(
                    "duplicated",
                    format!(
                        "user {} got message {id} live {} times (sessions {sessions:?})",
                        r.user_id,
                        sessions.len()
                    ),
                );
            }
        }

        // Converged: after pulling, the client holds each history exactly.
        for cid in mine {
            let Some(h) = histories.get(&cid) else {
                continue;
            };
            if h.is_empty() {
                continue;
            }
            let want: BTreeMap<i64, &str> =
                h.iter().map(|e| (e.seq, e.message_id.as_str())).collect();
            let have: BTreeMap<i64, &str> = r
                .view
                .get(&cid)
                .map(|v| v.iter().map(|(s, id)| (*s, id.as_str())).collect())
                .unwrap_or_default();
            let last = want.keys().next_back().copied().unwrap_or(0);
            let listed = r.listed.as_ref().map(|l| l.get(&cid).copied());
            if want != have || listed != Some(Some(last)) {
                f.counts.unconverged += 1;
                let missing = want.keys().filter(|s| !have.contains_key(s)).count();
                let extra = have.keys().filter(|s| !want.contains_key(s)).count();
                f.note(
                    "unconverged",
                    format!(
                        "user {} {cid}: holds {} of {} (missing {missing}, extra {extra}); listed last_seq_id {listed:?}, history last {last}",
                        r.user_id,
                        have.len(),
                        want.len()
                    ),
                );
            }
        }

        f.counts.misrouted += r.kicks.len();
        for kick in &r.kicks {
            f.note(
                "misrouted",
                format!("user {} kicked on its only connection, {kick}", r.user_id),
            );
        }

        f.counts.unacked += r.unacked.len();
        for cmid in r.unacked.iter() {
            f.note("unacked", format!("user {} {cmid}", r.user_id));
        }
        f.counts.refused += r.refused.len();
        for why in &r.refused {
            f.note("refused", format!("user {} {why}", r.user_id));
        }
        for note in &r.notes {
            f.note("note", format!("user {} {note}", r.user_id));
        }
    }
    f
}

#[cfg(test)]
mod tests {
    //! The checks against made-up runs: each kind of violation is counted
    //! under its own name, and a clean run counts nothing.

    use std::collections::{BTreeMap, HashMap};

    use tokio::time::Instant;

    use super::*;
    use crate::report::{Ack, Delivery, Sent};

    fn entry(seq: i64, id: &str, cmid: Option<&str>, from: i64) -> Entry {
        Entry {
            seq,
            message_id: id.into(),
            client_msg_id: cmid.map(str::to_owned),
            from: from.to_string(),
        }
    }

    /// User 1 sent `a` and `b` to group 7 (seqs 2, 3 after the create
    /// notice); user 2 got both live and pulled everything.
    fn clean() -> (Vec<Report>, BTreeMap<String, Vec<Entry>>) {
        let cid = group_conversation_id(Id(7));
        let now = Instant::now();
        let history = vec![
            entry(1, "m1", None, 0),
            entry(2, "m2", Some("a"), 1),
            entry(3, "m3", Some("b"), 1),
        ];
        let view: BTreeMap<i64, String> = history
            .iter()
            .map(|e| (e.seq, e.message_id.clone()))
            .collect();
        let report = |user: i64| Report {
            user_id: user,
            token: String::new(),
            sent: HashMap::new(),
            acks: Vec::new(),
            unacked: Vec::new(),
            refused: Vec::new(),
            deliveries: Vec::new(),
            view: BTreeMap::from([(cid.clone(), view.clone())]),
            listed: Some(HashMap::from([(cid.clone(), 3)])),
            sessions: 1,
            resent: 0,
            retry_codes: BTreeMap::new(),
            kicks: Vec::new(),
            notes: Vec::new(),
        };
        let mut sender = report(1);
        for (cmid, seq, id) in [("a", 2, "m2"), ("b", 3, "m3")] {
            sender.sent.insert(
                cmid.into(),
                Sent {
                    first: now,
                    cid: cid.clone(),
                },
            );
            sender.acks.push(Ack {
                client_msg_id: cmid.into(),
                cid: cid.clone(),
                seq,
                message_id: id.into(),
                at: now,
            });
        }
        let mut receiver = report(2);
        for e in &history[1..] {
            receiver.deliveries.push(Delivery {
                session: 1,
                cid: cid.clone(),
                entry: e.clone(),
                at: now,
            });
        }
        (vec![sender, receiver], BTreeMap::from([(cid, history)]))
    }

    #[test]
    fn a_clean_run_counts_nothing() {
        let (reports, histories) = clean();
        let f = check(&reports, &histories, 7);
        assert_eq!(f.counts, Counts::default(), "{:?}", f.details);
    }

    #[test]
    fn each_violation_is_counted() {
        let cid = group_conversation_id(Id(7));
        // Lost: seq 3 stored as another message; that also leaves the views behind.
        let (reports, mut histories) = clean();
        if let Some(h) = histories.get_mut(&cid) {
            h[2] = entry(3, "other", Some("x"), 2);
        }
        let c = check(&reports, &histories, 7).counts;
        assert_eq!((c.lost, c.phantom), (1, 1));

        // Duplicated in storage, and a gap.
        let (reports, mut histories) = clean();
        if let Some(h) = histories.get_mut(&cid) {
            h.push(entry(5, "m5", Some("a"), 1));
        }
        let c = check(&reports, &histories, 7).counts;
        assert_eq!((c.duplicated, c.gaps), (1, 1));

        // Reordered on one connection, duplicated live, unacked, unconverged.
        let (mut reports, histories) = clean();
        reports[1].deliveries.swap(0, 1);
        reports[1].deliveries.push(Delivery {
            session: 2,
            cid: cid.clone(),
            entry: entry(3, "m3", Some("b"), 1),
            at: Instant::now(),
        });
        reports[0].unacked.push("c".into());
        reports[1].listed = Some(HashMap::from([(cid.clone(), 2)]));
        let c = check(&reports, &histories, 7).counts;
        assert_eq!(
            (c.reordered, c.duplicated, c.unacked, c.unconverged),
            (1, 1, 1, 1)
        );

        // Misrouted: another user's ack, and a 1:1 of two other users.
        let (mut reports, histories) = clean();
        reports[1].acks.push(Ack {
            client_msg_id: "a".into(),
            cid: cid.clone(),
            seq: 2,
            message_id: "m2".into(),
            at: Instant::now(),
        });
        reports[1].deliveries.push(Delivery {
            session: 1,
            cid: single_conversation_id(Id(1), Id(3)),
            entry: entry(1, "m9", Some("z"), 3),
            at: Instant::now(),
        });
        let c = check(&reports, &histories, 7).counts;
        assert_eq!(c.misrouted, 2);
    }
}
