//! Client requests in flight: the loop's end of the request channel, the answers it
//! owes for the proposals and reads it took, and what it answers them when it stops.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::Ordering;
use std::time::Instant;

use raft_core::{Event, LogIndex, Proposal, ProposalId, ReadId};

use super::NodeLoop;
use crate::client::{AppendError, Inbox, ReadError, Request};
use crate::client_error::UnknownFate;
use crate::envelope::wrap_snapshot;
use crate::exit::StopReason;
use crate::reply::Reply;

/// The answer a proposal's client waits for.
pub(super) type ProposalReply = Reply<Result<LogIndex, AppendError>>;
/// The answer a read's client waits for.
pub(super) type ReadReply = Reply<Result<LogIndex, ReadError>>;

/// A map keyed by the loop's own ids, which count up from 1.
pub(super) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// One multiplication per key: the ids are the loop's own, so no one can choose keys
/// that collide, and the default SipHash was 3% of the leader's instructions (two
/// lookups per proposal). Multiplying by an odd constant is a bijection on the low
/// bits (the bucket) and spreads consecutive ids over the high bits (the tag).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        const GOLDEN_RATIO_ODD: u64 = 0x9E37_79B9_7F4A_7C15;
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(GOLDEN_RATIO_ODD);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Requests taken from clients whose answers are still owed.
#[derive(Debug)]
pub(super) struct Requests {
    pub(super) inbox: Inbox,
    /// Proposals (clients', and the loop's own that a client waits on) by id.
    pub(super) proposals: IdMap<ProposalId, ProposalReply>,
    /// Read barriers by id.
    pub(super) reads: IdMap<ReadId, ReadReply>,
    next_proposal_id: u64,
    next_read_id: u64,
    /// The most requests taken from the channel in one turn.
    pub(super) per_turn_max: usize,
    /// Requests may be left in the queue (the drain stopped at its bound).
    pub(super) left: bool,
}

impl Requests {
    pub(super) fn new(inbox: Inbox, per_turn_max: usize) -> Self {
        debug_assert!(per_turn_max > 0);
        Requests {
            inbox,
            proposals: IdMap::default(),
            reads: IdMap::default(),
            next_proposal_id: 1,
            next_read_id: 1,
            per_turn_max,
            left: false,
        }
    }

    /// A fresh proposal id (clients' and the loop's own proposals share the space).
    pub(super) fn next_proposal(&mut self) -> ProposalId {
        let id = ProposalId(self.next_proposal_id);
        self.next_proposal_id += 1;
        id
    }

    fn next_read(&mut self) -> ReadId {
        let id = ReadId(self.next_read_id);
        self.next_read_id += 1;
        id
    }
}

impl NodeLoop {
    pub(super) fn drain_requests(&mut self, now: Instant) {
        // Clear the flag before draining: a request sent after the drain rings again.
        self.requests
            .inbox
            .wake_pending
            .store(false, Ordering::Release);
        self.requests.left = false;
        for _ in 0..self.requests.per_turn_max {
            let Ok(request) = self.requests.inbox.rx.try_recv() else {
                return;
            };
            self.on_request(request, now);
        }
        self.requests.left = true;
    }

    fn on_request(&mut self, request: Request, now: Instant) {
        match request {
            Request::Propose { command, reply } => {
                let id = self.requests.next_proposal();
                self.requests.proposals.insert(id, reply);
                self.gathered.proposals.push(Proposal { id, command });
            }
            Request::Read { reply } => {
                let id = self.requests.next_read();
                self.requests.reads.insert(id, reply);
                self.gathered.other_events.push(Event::Read { id });
            }
            Request::Status { reply } => reply.send(self.status()),
            Request::Metrics { reply } => reply.send(self.metrics()),
            Request::TransferLeadership { to } => self
                .gathered
                .other_events
                .push(Event::TransferLeadership { to }),
            Request::ChangeMembership {
                changes,
                addrs,
                reply,
            } => self.on_change_membership(changes, addrs, reply, now),
            Request::PublishAddrs { addrs, reply } => {
                for (id, member) in &addrs {
                    self.members.directory.stage(*id, member.clone());
                }
                match self.propose_record(addrs) {
                    Ok(id) => {
                        self.requests.proposals.insert(id, reply);
                    }
                    Err(e) => reply.send(Err(e)),
                }
            }
            Request::Compact { up_to, data } => {
                // The snapshot carries the address table as it was at `up_to`.
                let data = wrap_snapshot(self.members.directory.at(up_to), &data);
                self.gathered
                    .other_events
                    .push(Event::Compact { up_to, data })
            }
            Request::Shutdown => self.lifecycle.shutting_down = true,
        }
    }
}

impl Drop for NodeLoop {
    /// Answers every proposal the loop took: one never stepped into the core was not
    /// proposed (`Shutdown`); one that was may be in other nodes' logs and commit
    /// there, so its fate is unknown. (Never "not applied" for those: that answer
    /// would make a client that retries without a request id apply it twice.)
    fn drop(&mut self) {
        self.lifecycle.exit.record(StopReason::Requested);
        let mut unstepped: BTreeSet<ProposalId> =
            self.gathered.proposals.iter().map(|p| p.id).collect();
        for event in &self.gathered.other_events {
            match event {
                Event::Propose(proposals) => unstepped.extend(proposals.iter().map(|p| p.id)),
                Event::ChangeMembership { id, .. } => {
                    unstepped.insert(*id);
                }
                _ => {}
            }
        }
        for (id, reply) in self.requests.proposals.drain() {
            let answer = if unstepped.contains(&id) {
                AppendError::Shutdown
            } else {
                AppendError::Unknown(UnknownFate::NodeStopped)
            };
            reply.send(Err(answer));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn consecutive_ids_spread_over_buckets_and_tags() {
        let hasher = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1..=4096u64)
            .map(|id| hasher.hash_one(ProposalId(id)))
            .collect();
        let buckets: BTreeSet<u64> = hashes.iter().map(|h| h & 4095).collect();
        assert_eq!(
            buckets.len(),
            4096,
            "one id per bucket of a 4096-bucket table"
        );
        let tags: BTreeSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(tags.len(), 128, "every 7-bit tag is used");
    }
}
