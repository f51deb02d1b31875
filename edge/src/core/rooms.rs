//! A core's group rooms: group id → this core's connections of the group's
//! members, so a large group's message is one downstream record per core,
//! expanded here (docs/design.md, group rooms).
//!
//! A connection's rooms are filled once, between its registration and its
//! 101 (the side thread asks who the user's groups are), and kept current by
//! membership records (`+`/`-`/`x` keys). A membership record can overtake
//! the fill — the control plane sends it to every registered connection, and
//! this one registered before the fill was read — so records that arrive
//! while a connection's fill is under way are kept and replayed, in order,
//! on top of the fill: whichever of the two saw a change last wins.
//!
//! Connections in no group cost nothing here.

use std::collections::HashMap;

/// One core's rooms (single-threaded, like everything on a core).
#[derive(Default)]
pub(super) struct Rooms {
    members: HashMap<i64, Vec<u64>>,
    of_conn: HashMap<u64, Vec<i64>>,
    /// Connections whose fill is under way, with the membership records
    /// (group, joined) that arrived meanwhile.
    filling: HashMap<u64, Vec<(i64, bool)>>,
}

impl Rooms {
    /// The connection's fill is under way: hold its membership records.
    pub(super) fn start_fill(&mut self, conn: u64) {
        self.filling.insert(conn, Vec::new());
    }

    /// The connection's groups as read at fill time, then what changed since.
    pub(super) fn finish_fill(&mut self, conn: u64, groups: &[i64]) {
        let later = self.filling.remove(&conn).unwrap_or_default();
        for &group in groups {
            self.join(conn, group);
        }
        for (group, joined) in later {
            self.change(conn, group, joined);
        }
    }

    /// A membership record for a live connection of this core.
    pub(super) fn change(&mut self, conn: u64, group: i64, joined: bool) {
        if let Some(held) = self.filling.get_mut(&conn) {
            held.push((group, joined));
        } else if joined {
            self.join(conn, group);
        } else {
            self.leave(conn, group);
        }
    }

    /// The group is gone.
    pub(super) fn drop_room(&mut self, group: i64) {
        for conn in self.members.remove(&group).unwrap_or_default() {
            self.forget_group(conn, group);
        }
        for held in self.filling.values_mut() {
            held.push((group, false));
        }
    }

    /// The connection closed.
    pub(super) fn forget(&mut self, conn: u64) {
        self.filling.remove(&conn);
        for group in self.of_conn.remove(&conn).unwrap_or_default() {
            if let Some(room) = self.members.get_mut(&group) {
                room.retain(|c| *c != conn);
                if room.is_empty() {
                    self.members.remove(&group);
                }
            }
        }
    }

    /// This core's connections in the group's room.
    pub(super) fn members(&self, group: i64) -> &[u64] {
        self.members.get(&group).map_or(&[], Vec::as_slice)
    }

    fn join(&mut self, conn: u64, group: i64) {
        let groups = self.of_conn.entry(conn).or_default();
        if groups.contains(&group) {
            return;
        }
        groups.push(group);
        self.members.entry(group).or_default().push(conn);
    }

    fn leave(&mut self, conn: u64, group: i64) {
        let Some(room) = self.members.get_mut(&group) else {
            return;
        };
        room.retain(|c| *c != conn);
        if room.is_empty() {
            self.members.remove(&group);
        }
        self.forget_group(conn, group);
    }

    fn forget_group(&mut self, conn: u64, group: i64) {
        if let Some(groups) = self.of_conn.get_mut(&conn) {
            groups.retain(|g| *g != group);
            if groups.is_empty() {
                self.of_conn.remove(&conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(rooms: &Rooms, group: i64) -> Vec<u64> {
        let mut members = rooms.members(group).to_vec();
        members.sort_unstable();
        members
    }

    #[test]
    fn fill_join_leave_and_close() {
        let mut rooms = Rooms::default();
        rooms.start_fill(1);
        rooms.finish_fill(1, &[10, 20]);
        rooms.start_fill(2);
        rooms.finish_fill(2, &[10]);
        assert_eq!(sorted(&rooms, 10), vec![1, 2]);
        rooms.change(2, 20, true);
        rooms.change(2, 20, true);
        assert_eq!(sorted(&rooms, 20), vec![1, 2]);
        rooms.change(1, 10, false);
        assert_eq!(sorted(&rooms, 10), vec![2]);
        rooms.forget(2);
        assert_eq!(sorted(&rooms, 10), Vec::<u64>::new());
        assert_eq!(sorted(&rooms, 20), vec![1]);
        rooms.forget(1);
        assert!(rooms.members.is_empty() && rooms.of_conn.is_empty());
    }

    #[test]
    fn records_during_a_fill_are_replayed_on_top_of_it() {
        let mut rooms = Rooms::default();
        rooms.start_fill(1);
        // Removed from 10 after the fill was read; added to 30 before it was.
        rooms.change(1, 10, false);
        rooms.change(1, 30, true);
        assert!(
            rooms.members(10).is_empty(),
            "nothing joins before the fill"
        );
        rooms.finish_fill(1, &[10, 30]);
        assert_eq!(sorted(&rooms, 10), Vec::<u64>::new());
        assert_eq!(sorted(&rooms, 30), vec![1]);
        // A room dropped during a fill stays dropped.
        rooms.start_fill(2);
        rooms.drop_room(30);
        rooms.finish_fill(2, &[30]);
        assert!(rooms.members(30).is_empty());
    }

    #[test]
    fn a_connection_closed_mid_fill_leaves_nothing() {
        let mut rooms = Rooms::default();
        rooms.start_fill(1);
        rooms.change(1, 10, true);
        rooms.forget(1);
        assert!(rooms.filling.is_empty() && rooms.members.is_empty());
    }
}
