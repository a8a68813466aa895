//! raft-rs (tikv/raft 0.7) driven the way its README's ready loop does, with
//! `MemStorage` and every write durable at once.

use std::time::Instant;

use raft::eraftpb::{ConfState, Message};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};

use crate::{Election, Side};

/// Nodes 1..=n in one thread; messages wait in `queue` for the next round.
pub struct RrsCluster {
    nodes: Vec<RawNode<MemStorage>>,
    queue: Vec<Message>,
}

impl RrsCluster {
    /// Handles every node's ready state: persist, send, advance.
    fn handle_readies(&mut self) {
        for node in &mut self.nodes {
            if !node.has_ready() {
                continue;
            }
            let store = node.raft.raft_log.store.clone();
            let mut ready = node.ready();
            self.queue.extend(ready.take_messages());
            if !ready.entries().is_empty() {
                store.wl().append(ready.entries()).expect("append");
            }
            if let Some(hard_state) = ready.hs() {
                store.wl().set_hardstate(hard_state.clone());
            }
            self.queue.extend(ready.take_persisted_messages());
            let mut light = node.advance(ready);
            if let Some(commit) = light.commit_index() {
                store.wl().mut_hard_state().set_commit(commit);
            }
            self.queue.extend(light.take_messages());
            drop(light.take_committed_entries());
            node.advance_apply();
        }
    }

    /// Delivers every message in flight; the answers go to the next round.
    fn deliver_round(&mut self) {
        for message in std::mem::take(&mut self.queue) {
            let to = message.to as usize - 1;
            // A message to a node that no longer tracks the sender is dropped, as a
            // network would.
            let _ = self.nodes[to].step(message);
        }
        self.handle_readies();
    }
}

impl Side for RrsCluster {
    const NAME: &'static str = "raft-rs";

    fn new(nodes: u64, pre_vote: bool) -> Self {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let voters: Vec<u64> = (1..=nodes).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let storage =
                    MemStorage::new_with_conf_state(ConfState::from((voters.clone(), vec![])));
                let config = Config {
                    id,
                    election_tick: 10,
                    heartbeat_tick: 2,
                    pre_vote,
                    ..Config::default()
                };
                RawNode::new(&config, storage, &logger).expect("a valid config")
            })
            .collect();
        RrsCluster {
            nodes,
            queue: Vec::new(),
        }
    }

    fn elect(&mut self) -> Election {
        let start = Instant::now();
        self.nodes[0].campaign().expect("campaign");
        self.handle_readies();
        let mut election = Election::default();
        for _ in 0..32 {
            let leader = &self.nodes[0].raft;
            if leader.state == StateRole::Leader {
                if election.to_leader.is_zero() {
                    election.to_leader = start.elapsed();
                }
                if leader.raft_log.committed >= 1 {
                    election.to_committed = start.elapsed();
                    return election;
                }
            }
            self.deliver_round();
        }
        panic!("raft-rs: no committed leader after 32 rounds");
    }
}
