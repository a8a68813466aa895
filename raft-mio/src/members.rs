//! Where the members are: each member's raft address and the application's own
//! addresses for it (a client port, an HTTP port), replicated through the log.
//!
//! ## Why through the log
//! A membership change is only useful if every member can reach the new node and
//! the new node every member. Telling each node by hand races with the change, and
//! whatever was told is lost to a node that restarts, or that joins later and learns
//! the log from a snapshot. So addresses travel the way the configuration does:
//! - An *address record* (members and their [`MemberAddrs`]) is a command entry in
//!   raft-mio's [envelope](crate::envelope), tagged apart from the application's
//!   commands; the application never sees it as a command.
//! - A leader proposes a record right before each configuration change, in the same
//!   step, so the record is the entry just before the change: a follower knows a new
//!   member's address by the time it applies the change, whatever order the
//!   entries reach it in.
//! - A leader that has applied an entry of its own term re-publishes what the table
//!   lacks: members whose address only its configuration knows (the founding
//!   members), a record that was dropped, and its own addresses if the table has
//!   them wrong. So the table converges to every member's addresses.
//! - But it publishes nothing that would tell no node anything: while the table is
//!   empty and the record would hold only configured addresses, on a node that
//!   started fresh as a founder (see `Directory::is_news`). Every founder was
//!   configured with those same addresses, and a node that joins later learns them
//!   from the record proposed with its change. So a new cluster's first command
//!   lands at index 2, right after the first leader's no-op.
//! - A snapshot carries the table as of its last index (the snapshot
//!   [envelope](crate::envelope)), so a node that catches up from a snapshot (or
//!   restarts from one) knows every member it needs.
//!
//! ## Rules of the table
//! - A record only adds or replaces addresses; it never removes one. Applying a
//!   configuration entry removes every node that is not a member of it, which keeps
//!   the table bounded by the membership.
//! - Lookups try the replicated table, then addresses given to a change request on
//!   this node (a leader dials a new member before its record commits), then the
//!   node's configuration.

use std::collections::{BTreeMap, BTreeSet};

use raft_core::{LogIndex, Membership, NodeId};
use serde::{Deserialize, Serialize};

/// How to reach one member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddrs {
    /// Where its raft peers reach it (`host:port`).
    pub raft: String,
    /// The application's addresses for it, by name (for example `"client"` to
    /// `"10.0.0.4:8001"`), so that any node can tell a client where a member serves.
    pub app: BTreeMap<String, String>,
}

impl MemberAddrs {
    /// A member reached at `raft`, with no application addresses.
    pub fn new(raft: impl Into<String>) -> Self {
        MemberAddrs {
            raft: raft.into(),
            app: BTreeMap::new(),
        }
    }

    /// Adds the application address `name`.
    pub fn with(mut self, name: impl Into<String>, addr: impl Into<String>) -> Self {
        self.app.insert(name.into(), addr.into());
        self
    }

    /// The application address `name`, if known.
    pub fn app(&self, name: &str) -> Option<&str> {
        self.app.get(name).map(String::as_str)
    }
}

impl From<String> for MemberAddrs {
    fn from(raft: String) -> Self {
        MemberAddrs::new(raft)
    }
}

impl From<&str> for MemberAddrs {
    fn from(raft: &str) -> Self {
        MemberAddrs::new(raft)
    }
}

/// Members and their addresses.
pub type AddrTable = BTreeMap<NodeId, MemberAddrs>;

/// A node's knowledge of where the members are (see the module docs).
#[derive(Debug)]
pub(crate) struct Directory {
    me: NodeId,
    /// From this node's configuration.
    seeds: AddrTable,
    /// From change requests made on this node, until the change is decided.
    staged: AddrTable,
    /// The replicated table, as of the applied index.
    table: AddrTable,
    /// The table after each change since the snapshot, oldest first; the first is the
    /// table in force at the snapshot (or the empty table at index 0). Bounded by
    /// the membership changes between two snapshots: [`compact`](Self::compact)
    /// drops what a new snapshot covers.
    versions: Vec<(LogIndex, AddrTable)>,
    /// Whether `seeds` are the founding configuration: this process started a
    /// founding member on empty storage, so its configuration is the one the other
    /// founders were given too. A node that restarts may have been given other
    /// addresses since (it moved), which only a record can tell the others.
    seeds_founding: bool,
}

impl Directory {
    /// A directory knowing only the configured addresses; `seeds_founding` says
    /// whether they are the founding configuration (see [`is_news`](Self::is_news)).
    pub(crate) fn new(me: NodeId, seeds: AddrTable, seeds_founding: bool) -> Self {
        Directory {
            me,
            seeds,
            staged: AddrTable::new(),
            table: AddrTable::new(),
            versions: vec![(LogIndex(0), AddrTable::new())],
            seeds_founding,
        }
    }

    /// How to reach `id`, as far as this node knows.
    pub(crate) fn get(&self, id: NodeId) -> Option<&MemberAddrs> {
        self.table
            .get(&id)
            .or_else(|| self.staged.get(&id))
            .or_else(|| self.seeds.get(&id))
    }

    /// Remembers addresses given with a change request (until the change is decided
    /// and its record applied).
    pub(crate) fn stage(&mut self, id: NodeId, addrs: MemberAddrs) {
        self.staged.insert(id, addrs);
    }

    /// Forgets staged addresses of nodes that are not `members`.
    pub(crate) fn retain_staged(&mut self, members: &BTreeSet<NodeId>) {
        self.staged.retain(|id, _| members.contains(id));
    }

    /// The table of a snapshot at `index` replaces everything replicated.
    pub(crate) fn restore(&mut self, index: LogIndex, table: AddrTable) {
        self.table = table.clone();
        self.versions = vec![(index, table)];
    }

    /// Applies the address record at `index`; returns the nodes whose addresses
    /// changed.
    pub(crate) fn apply_record(&mut self, index: LogIndex, record: AddrTable) -> Vec<NodeId> {
        let mut changed = Vec::new();
        for (id, addrs) in record {
            if self.table.get(&id) != Some(&addrs) {
                changed.push(id);
                self.table.insert(id, addrs);
            }
        }
        if !changed.is_empty() {
            self.push_version(index);
        }
        changed
    }

    /// Applies the configuration entry at `index`: nodes that are not members of it
    /// leave the table. Returns them.
    pub(crate) fn apply_membership(
        &mut self,
        index: LogIndex,
        membership: &Membership,
    ) -> Vec<NodeId> {
        let members = membership.members();
        let gone: Vec<NodeId> = self
            .table
            .keys()
            .filter(|id| !members.contains(id))
            .copied()
            .collect();
        if !gone.is_empty() {
            self.table.retain(|id, _| members.contains(id));
            self.push_version(index);
        }
        gone
    }

    fn push_version(&mut self, index: LogIndex) {
        let last = self.versions.last().expect("the base is never removed").0;
        debug_assert!(index >= last, "applies come in index order");
        if index == last {
            self.versions.pop();
        }
        self.versions.push((index, self.table.clone()));
    }

    /// The replicated table as it was at `index` (an index this node has applied).
    pub(crate) fn at(&self, index: LogIndex) -> &AddrTable {
        let position = self.versions.partition_point(|(i, _)| *i <= index);
        &self.versions[position.saturating_sub(1)].1
    }

    /// A snapshot covers everything through `up_to`: the table in force there becomes
    /// the base.
    pub(crate) fn compact(&mut self, up_to: LogIndex) {
        let position = self.versions.partition_point(|(i, _)| *i <= up_to);
        self.versions.drain(..position.saturating_sub(1));
    }

    /// The record a leader should publish so that the table covers `members`:
    /// `overrides` (addresses given with a request), every member the table lacks
    /// and this node knows, and this node's own configured addresses if the table
    /// has them otherwise. Empty if the table needs nothing.
    pub(crate) fn record_for(
        &self,
        members: &BTreeSet<NodeId>,
        overrides: &AddrTable,
    ) -> AddrTable {
        let mut record = overrides.clone();
        for id in members {
            if record.contains_key(id) {
                continue;
            }
            let known = self.staged.get(id).or_else(|| self.seeds.get(id));
            let wanted = match (self.table.get(id), known) {
                (None, Some(known)) => Some(known.clone()),
                // A node is the authority on the addresses it was configured with
                // (not on the ones it was not told: those the table keeps).
                (Some(replicated), Some(own)) if *id == self.me => {
                    let mut merged = replicated.clone();
                    merged.raft.clone_from(&own.raft);
                    merged.app.extend(own.app.clone());
                    (merged != *replicated).then_some(merged)
                }
                _ => None,
            };
            if let Some(addrs) = wanted {
                record.insert(*id, addrs);
            }
        }
        record
    }

    /// Whether publishing `record` could tell some node an address it does not
    /// know. It could not while the replicated table is empty (nobody has been told
    /// anything but their configuration), every address in the record is this
    /// node's configured one, and that configuration is the founding one: every
    /// founder was given the same, and a node that joins later gets them all in the
    /// record proposed with its change. Anything else may be news: a staged address,
    /// a table that is in use (a member may have been re-addressed through it), or
    /// a node that restarted and may have been configured with a new address of its
    /// own since the others were configured.
    pub(crate) fn is_news(&self, record: &AddrTable) -> bool {
        if record.is_empty() {
            return false;
        }
        let configured = record
            .iter()
            .all(|(id, addrs)| self.seeds.get(id) == Some(addrs));
        !(self.table.is_empty() && configured && self.seeds_founding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(raft: &str) -> MemberAddrs {
        MemberAddrs::new(raft).with("client", format!("{raft}-client"))
    }

    fn table(items: &[(u64, &str)]) -> AddrTable {
        items
            .iter()
            .map(|(id, a)| (NodeId(*id), addrs(a)))
            .collect()
    }

    fn members(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().map(|id| NodeId(*id)).collect()
    }

    #[test]
    fn the_replicated_table_wins_over_staged_and_configured_addresses() {
        let mut dir = Directory::new(NodeId(1), table(&[(1, "seed1"), (2, "seed2")]), true);
        assert_eq!(dir.get(NodeId(2)).unwrap().raft, "seed2");
        dir.stage(NodeId(2), addrs("staged2"));
        assert_eq!(dir.get(NodeId(2)).unwrap().raft, "staged2");
        dir.apply_record(LogIndex(3), table(&[(2, "rep2")]));
        assert_eq!(dir.get(NodeId(2)).unwrap().raft, "rep2");
        assert_eq!(dir.get(NodeId(9)), None);
    }

    #[test]
    fn records_upsert_and_configurations_prune() {
        let mut dir = Directory::new(NodeId(1), AddrTable::new(), true);
        let changed = dir.apply_record(LogIndex(2), table(&[(1, "a"), (2, "b"), (3, "c")]));
        assert_eq!(changed.len(), 3);
        assert!(dir.apply_record(LogIndex(3), table(&[(2, "b")])).is_empty());
        let gone = dir.apply_membership(LogIndex(5), &Membership::new(members(&[1, 2])));
        assert_eq!(gone, vec![NodeId(3)]);
        assert_eq!(dir.table.len(), 2);
        // The table as it was at each index, for snapshots taken behind the loop.
        assert_eq!(dir.at(LogIndex(1)).len(), 0);
        assert_eq!(dir.at(LogIndex(4)).len(), 3);
        assert_eq!(dir.at(LogIndex(9)).len(), 2);
        dir.compact(LogIndex(4));
        assert_eq!(dir.at(LogIndex(4)).len(), 3, "the version in force stays");
        assert_eq!(dir.versions.len(), 2);
        dir.restore(LogIndex(20), table(&[(7, "x")]));
        assert_eq!(dir.at(LogIndex(20)).len(), 1);
        assert_eq!(dir.get(NodeId(7)).unwrap().raft, "x");
    }

    #[test]
    fn a_leader_publishes_what_the_table_lacks_and_its_own_corrections() {
        let mut dir = Directory::new(NodeId(1), table(&[(1, "new1"), (2, "seed2")]), false);
        dir.apply_record(LogIndex(1), table(&[(1, "old1")]));
        let record = dir.record_for(&members(&[1, 2, 3]), &AddrTable::new());
        // Node 3 is unknown here: nothing to publish for it.
        assert_eq!(record, table(&[(1, "new1"), (2, "seed2")]));
        dir.apply_record(LogIndex(2), record);
        assert!(dir
            .record_for(&members(&[1, 2]), &AddrTable::new())
            .is_empty());
        // What this node was not configured with, it leaves as the table has it.
        let mut bare = Directory::new(NodeId(4), [(NodeId(4), "h4".into())].into(), false);
        bare.apply_record(LogIndex(3), table(&[(4, "h4")]));
        assert!(bare
            .record_for(&members(&[4]), &AddrTable::new())
            .is_empty());
        // A request's addresses always go in, even over the table's.
        let overrides = table(&[(2, "moved2")]);
        assert_eq!(dir.record_for(&members(&[1, 2]), &overrides), overrides);
    }

    #[test]
    fn a_fresh_founder_publishes_nothing_every_founder_was_configured_with() {
        let seeds = table(&[(1, "h1"), (2, "h2"), (3, "h3")]);
        let all = members(&[1, 2, 3]);
        let fresh = Directory::new(NodeId(1), seeds.clone(), true);
        let record = fresh.record_for(&all, &AddrTable::new());
        assert_eq!(record, seeds, "the table lacks every founder");
        assert!(!fresh.is_news(&record), "but every founder has them all");

        // Restarted, the node may have been given a new address of its own.
        let restarted = Directory::new(NodeId(1), seeds.clone(), false);
        assert!(restarted.is_news(&restarted.record_for(&all, &AddrTable::new())));

        // Staged addresses (a change request on this node) are news.
        let mut staging = Directory::new(NodeId(1), seeds.clone(), true);
        staging.stage(NodeId(4), addrs("h4"));
        let record = staging.record_for(&members(&[1, 2, 3, 4]), &AddrTable::new());
        assert!(staging.is_news(&record));

        // Once the table is in use, what it lacks is published.
        let mut in_use = Directory::new(NodeId(1), seeds, true);
        in_use.apply_record(LogIndex(2), table(&[(4, "h4")]));
        assert!(in_use.is_news(&in_use.record_for(&all, &AddrTable::new())));
        assert!(!in_use.is_news(&AddrTable::new()));
    }
}
