//! raft-core driven by the simplest shell: every write durable at once.

use std::time::Instant;

use raft_core::{Action, Config, Event, LogIndex, Message, NodeId, RaftNode, Restored, RoleKind};

use crate::{Election, Side};

/// Nodes 1..=n in one thread; messages wait in `queue` for the next round.
pub struct CoreCluster {
    nodes: Vec<RaftNode>,
    queue: Vec<Message>,
    actions: Vec<Action>,
}

impl CoreCluster {
    /// Steps node `id` and carries out what it asks, reporting writes durable at once.
    fn step(&mut self, id: NodeId, event: Event) {
        let index = id.0 as usize - 1;
        let mut pending = vec![event];
        // Bounded: one Persisted report per round of writes, and writes come only
        // from the events of this call.
        for _ in 0..16 {
            let Some(event) = pending.pop() else { return };
            self.nodes[index].step_into(event, &mut self.actions);
            let mut through = None;
            for action in self.actions.drain(..) {
                match action {
                    Action::Send(message) => self.queue.push(message),
                    Action::PersistHardState { seq, .. }
                    | Action::AppendToLog { seq, .. }
                    | Action::PersistSnapshot { seq, .. } => through = Some(seq),
                    _ => {}
                }
            }
            if let Some(through) = through {
                pending.push(Event::Persisted { through });
            }
        }
        panic!("node {id} kept writing");
    }

    /// Delivers every message in flight; the answers go to the next round.
    fn deliver_round(&mut self) {
        for message in std::mem::take(&mut self.queue) {
            self.step(message.to, Event::Message(message));
        }
    }
}

impl Side for CoreCluster {
    const NAME: &'static str = "raft-core";

    fn new(nodes: u64, pre_vote: bool) -> Self {
        let voters: Vec<NodeId> = (1..=nodes).map(NodeId).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, voters.iter().copied());
                config.election_timeout_ticks_min = 10;
                config.election_timeout_ticks_max = 20;
                config.heartbeat_interval_ticks = 2;
                config.pre_vote = pre_vote;
                // raft-rs's default; without it the two elections are the same protocol.
                config.check_quorum = false;
                RaftNode::new(config, Restored::default()).expect("a valid config")
            })
            .collect();
        CoreCluster {
            nodes,
            queue: Vec::new(),
            actions: Vec::new(),
        }
    }

    fn elect(&mut self) -> Election {
        let start = Instant::now();
        self.step(NodeId(1), Event::Campaign);
        let mut election = Election::default();
        for _ in 0..32 {
            let leader = &self.nodes[0];
            if leader.role() == RoleKind::Leader {
                if election.to_leader.is_zero() {
                    election.to_leader = start.elapsed();
                }
                if leader.commit_index() >= LogIndex(1) {
                    election.to_committed = start.elapsed();
                    return election;
                }
            }
            self.deliver_round();
        }
        panic!("raft-core: no committed leader after 32 rounds");
    }
}
