//! The machines of a world, by node id: node ids run from 1 to the number of
//! machines (the initial voters, then the spares), and this is the one place that
//! turns an id into a position.

use raft_core::{NodeId, RaftNode};

use crate::host::NodeHost;

/// Every machine of the world, node `i` at position `i - 1`.
pub(crate) struct Hosts {
    hosts: Vec<NodeHost>,
}

impl Hosts {
    /// The machines `hosts`, which must be nodes 1, 2, ... in order.
    pub(crate) fn new(hosts: Vec<NodeHost>) -> Hosts {
        debug_assert!(hosts
            .iter()
            .enumerate()
            .all(|(i, h)| h.id == NodeId(i as u64 + 1)));
        Hosts { hosts }
    }

    /// The number of machines.
    pub(crate) fn len(&self) -> usize {
        self.hosts.len()
    }

    /// The machine of node `id`.
    pub(crate) fn host(&self, id: NodeId) -> &NodeHost {
        &self.hosts[slot(id)]
    }

    /// The machine of node `id`, to change.
    pub(crate) fn host_mut(&mut self, id: NodeId) -> &mut NodeHost {
        &mut self.hosts[slot(id)]
    }

    /// Every machine, in id order.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, NodeHost> {
        self.hosts.iter()
    }

    /// Every machine, in id order, to change.
    pub(crate) fn iter_mut(&mut self) -> std::slice::IterMut<'_, NodeHost> {
        self.hosts.iter_mut()
    }

    /// Every node id, in order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = NodeId> {
        (1..=self.hosts.len() as u64).map(NodeId)
    }

    /// The machine of node `id` to change, and every other one to read.
    pub(crate) fn split_mut(&mut self, id: NodeId) -> (&mut NodeHost, Peers<'_>) {
        let (before, rest) = self.hosts.split_at_mut(slot(id));
        let (host, after) = rest.split_first_mut().expect("the node's own host");
        (
            host,
            Peers {
                before,
                after,
                own: id,
            },
        )
    }
}

/// The other machines, read-only, while one host carries out its actions.
pub(crate) struct Peers<'a> {
    /// Hosts with smaller ids than the executing one.
    before: &'a [NodeHost],
    /// Hosts with larger ids.
    after: &'a [NodeHost],
    /// The executing host's id.
    own: NodeId,
}

impl Peers<'_> {
    /// The running node `id`, unless it is the executing one or down.
    pub(crate) fn raft(&self, id: NodeId) -> Option<&RaftNode> {
        let position = slot(id);
        let host = match position.cmp(&self.before.len()) {
            std::cmp::Ordering::Less => self.before.get(position),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => self.after.get(position - self.before.len() - 1),
        };
        debug_assert!(host.map_or(true, |h| h.id == id && id != self.own));
        host.and_then(|h| h.raft.as_ref())
    }
}

fn slot(id: NodeId) -> usize {
    debug_assert!(id.0 > 0, "node ids start at 1");
    id.0 as usize - 1
}
