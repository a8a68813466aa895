//! Simulated KV clients: each runs one operation at a time against the cluster,
//! with a timeout per attempt, retries (same client id and sequence number, so the
//! store applies a write at most once), and a record of every operation in the
//! [`History`].
//!
//! A client is a small state machine: the world feeds it wake-ups, replies and
//! timeouts, and carries out the [`ClientEffect`]s it returns.
//!
//! A local reader (some clients of some worlds) reads through one node, its home,
//! as an application does that reads from the replica on its own machine: every
//! read goes there (the node forwards it to the leader, or serves it if it leads),
//! while writes find the leader like everyone else's. A home that was cut off from
//! the cluster while it led is where a read served from a lease that outlived its
//! promise returns an old value. After the fault phase its reads roam too, so they
//! complete even if the home stays down.
//!
//! Finding the leader: a client starts each operation at the node it last heard
//! succeed (or was last told leads). It follows a `NotLeader` hint, which costs no
//! attempt (a redirect had no effect) up to [`REDIRECTS_MAX_PER_ENDPOINT`] per
//! endpoint and operation, unless the hint names a node that recently timed out on
//! it: a stale leader cut off in a minority keeps accepting requests it cannot
//! commit, and its old followers keep pointing at it, which once made one client
//! fail 881 of its 911 operations. Otherwise it moves on to the next endpoint in
//! order, so that every node is tried before any is tried twice.

use std::collections::BTreeMap;

use kv_model::{ClientId, Command, Operation, Outcome, RequestSeq};
use raft_core::NodeId;

use crate::history::{History, OpId, OpStatus};
use crate::linearizability::kv::{KvInput, KvOutput};
use crate::rng::{Ppm, SimRng};
use crate::time::SimTime;

/// What the clients do in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkloadParams {
    /// Concurrent clients.
    pub clients_count: u32,
    /// Distinct keys (few keys: more contention, sharper checks).
    pub keys_count: u32,
    /// The most time a client waits between operations.
    pub think_us_max: u64,
    /// How long a client waits for an answer before it retries elsewhere.
    pub request_timeout_us: u64,
    /// Attempts per operation before the client gives up (during the fault phase).
    pub attempts_max: u32,
    /// The share of reads.
    pub reads: Ppm,
    /// The share of compare-and-sets among writes.
    pub cas: Ppm,
    /// The share of deletes among the other writes.
    pub deletes: Ppm,
}

/// A request from a client to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    /// The client.
    pub client: ClientId,
    /// The operation's sequence number.
    pub seq: RequestSeq,
    /// Which attempt this is (1, 2, ...).
    pub attempt: u32,
    /// What is asked.
    pub body: RequestBody,
}

/// What a request asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestBody {
    /// Replicate this command.
    Write(Command),
    /// Read this key linearizably.
    Read {
        /// The key.
        key: String,
    },
}

/// A node's answer to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientReply {
    /// The node that answered.
    pub from: NodeId,
    /// The client.
    pub client: ClientId,
    /// The operation's sequence number.
    pub seq: RequestSeq,
    /// The attempt answered.
    pub attempt: u32,
    /// The answer.
    pub body: ReplyBody,
}

/// What a node answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyBody {
    /// The write committed and was applied with this outcome.
    Written(Outcome),
    /// The read was served with this value.
    Value(Option<String>),
    /// This node does not lead; try the hint. The attempt had no effect.
    NotLeader {
        /// The leader the node knows of.
        hint: Option<NodeId>,
    },
    /// The attempt definitely had no effect (dropped, overwritten, read failed).
    Refused,
    /// The node cannot tell whether the attempt took effect.
    Unknown,
}

/// What the world must do for a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEffect {
    /// Send `request` to node `to` after `delay_us` (plus the network's delay).
    Send {
        /// The node.
        to: NodeId,
        /// The request.
        request: ClientRequest,
        /// Extra delay before sending (backoff).
        delay_us: u64,
    },
    /// Call `on_timeout(seq, attempt)` after `after_us`.
    Timeout {
        /// The operation.
        seq: RequestSeq,
        /// The attempt.
        attempt: u32,
        /// When.
        after_us: u64,
    },
    /// Call `on_wake` after `after_us`.
    Wake {
        /// When.
        after_us: u64,
    },
}

#[derive(Clone, Debug)]
struct InFlight {
    seq: RequestSeq,
    key: String,
    body: RequestBody,
    history_id: OpId,
    /// The number of the latest request sent (attempts and redirects), which its
    /// answer and its timeout carry.
    attempt: u32,
    /// Requests that counted as attempts (redirects do not).
    tries: u32,
    /// `NotLeader` answers followed for free.
    redirects: u32,
    /// Where the latest request went.
    to: NodeId,
    /// Suspects a hint named once in this operation: a second hint naming one of
    /// them is followed (two nodes agree, or the suspect leads again).
    doubted: Vec<NodeId>,
    /// Nodes asked in this round of the operation that did not serve it (refused,
    /// named no other node, or timed out). The next endpoint is one not yet asked,
    /// even a suspect, before any is asked again; once every endpoint was, a new
    /// round starts. Without it, the clients of seed 707 (`--read-lease true`)
    /// suspected the leader after an old timeout and walked only the two nodes that
    /// could not hear it.
    asked: Vec<NodeId>,
    /// Some attempt's fate is unknown (timed out, or the node could not tell).
    any_unknown: bool,
}

impl InFlight {
    /// `node` was asked in this round and did not serve.
    fn note_asked(&mut self, node: NodeId) {
        if !self.asked.contains(&node) {
            self.asked.push(node);
        }
    }
}

/// Backoff before retrying an attempt that was refused.
const RETRY_BACKOFF_US: u64 = 5_000;

/// The free redirects an operation may follow, per endpoint (then a `NotLeader`
/// counts as an attempt): enough to walk the cluster twice.
pub const REDIRECTS_MAX_PER_ENDPOINT: u32 = 2;

/// How long a node that timed out stays suspect, in request timeouts: its hints
/// and its claim to lead are not followed meanwhile.
const SUSPECT_TIMEOUTS: u64 = 4;

/// One simulated client.
#[derive(Clone, Debug)]
pub struct Client {
    id: ClientId,
    /// The nodes this client knows to address, in id order (its endpoint list).
    endpoints: Vec<NodeId>,
    seq_last: u64,
    current: Option<InFlight>,
    leader_guess: NodeId,
    /// Nodes that timed out on this client, and until when it avoids them.
    suspects: BTreeMap<NodeId, SimTime>,
    /// The last value this client saw per key, to aim compare-and-sets well.
    last_seen: BTreeMap<String, Option<String>>,
    issuing: bool,
    /// A local reader's home: the node all its reads go to while it issues.
    read_home: Option<NodeId>,
}

impl Client {
    /// Client `id` (non-zero) of a cluster of `nodes_count` nodes (ids 1..=count).
    pub fn new(id: u64, nodes_count: u64, first_guess: NodeId) -> Client {
        assert!(id > 0 && nodes_count > 0);
        Client {
            id: ClientId(id),
            endpoints: (1..=nodes_count).map(NodeId).collect(),
            seq_last: 0,
            current: None,
            leader_guess: first_guess,
            suspects: BTreeMap::new(),
            last_seen: BTreeMap::new(),
            issuing: true,
            read_home: None,
        }
    }

    /// Makes this client a local reader whose reads go to `home` (see the module
    /// docs).
    pub fn with_read_home(mut self, home: NodeId) -> Client {
        debug_assert!(self.endpoints.contains(&home));
        self.read_home = Some(home);
        self
    }

    /// Whether this client reads through one node of its own.
    pub fn is_local_reader(&self) -> bool {
        self.read_home.is_some()
    }

    /// Where a read of this client must go, if anywhere in particular.
    fn home_of(&self, body: &RequestBody) -> Option<NodeId> {
        match body {
            RequestBody::Read { .. } if self.issuing => self.read_home,
            _ => None,
        }
    }

    /// The client's id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// Whether no operation is running.
    pub fn is_idle(&self) -> bool {
        self.current.is_none()
    }

    /// The fault phase is over: start no new operation, and retry the current one
    /// until it completes (liveness demands that it does).
    pub fn stop_issuing(&mut self) {
        self.issuing = false;
    }

    /// Starts the next operation, if the client is idle and still issuing.
    pub fn on_wake(
        &mut self,
        rng: &mut SimRng,
        params: &WorkloadParams,
        history: &mut History,
        now: SimTime,
        out: &mut Vec<ClientEffect>,
    ) {
        if !self.issuing || self.current.is_some() {
            return;
        }
        self.seq_last += 1;
        let seq = RequestSeq(self.seq_last);
        let key = format!("k{}", rng.below(u64::from(params.keys_count.max(1))));
        let (body, input) = self.draw_operation(rng, params, seq, &key);
        let history_id = history.invoke(self.id.0, &key, input, now);
        let to = self.home_of(&body).unwrap_or(self.leader_guess);
        self.current = Some(InFlight {
            seq,
            key,
            body,
            history_id,
            attempt: 0,
            tries: 1,
            redirects: 0,
            to,
            doubted: Vec::new(),
            asked: Vec::new(),
            any_unknown: false,
        });
        self.send_request(to, 0, params, out);
    }

    fn draw_operation(
        &self,
        rng: &mut SimRng,
        params: &WorkloadParams,
        seq: RequestSeq,
        key: &str,
    ) -> (RequestBody, KvInput) {
        if rng.chance(params.reads) {
            let body = RequestBody::Read { key: key.into() };
            return (body, KvInput::Get);
        }
        // Unique values make a history easy to read and sharpen the checker.
        let fresh = format!("c{}s{}", self.id.0, seq.0);
        let op = if rng.chance(params.cas) {
            let expected = if rng.chance(Ppm::from_percent(80.0)) {
                self.last_seen.get(key).cloned().flatten()
            } else {
                None
            };
            let new = if rng.chance(Ppm::from_percent(90.0)) {
                Some(fresh)
            } else {
                None
            };
            Operation::Cas {
                key: key.into(),
                expected,
                new,
            }
        } else if rng.chance(params.deletes) {
            Operation::Delete { key: key.into() }
        } else {
            Operation::Put {
                key: key.into(),
                value: fresh,
            }
        };
        let input = KvInput::from_operation(&op);
        let command = Command {
            client: self.id,
            seq,
            op,
        };
        (RequestBody::Write(command), input)
    }

    fn send_request(
        &mut self,
        to: NodeId,
        delay_us: u64,
        params: &WorkloadParams,
        out: &mut Vec<ClientEffect>,
    ) {
        let home = self.home_of(&self.current.as_ref().expect("running").body);
        let to = home.unwrap_or(to);
        let current = self.current.as_mut().expect("an operation is running");
        current.attempt += 1;
        current.to = to;
        let request = ClientRequest {
            client: self.id,
            seq: current.seq,
            attempt: current.attempt,
            body: current.body.clone(),
        };
        out.push(ClientEffect::Send {
            to,
            request,
            delay_us,
        });
        out.push(ClientEffect::Timeout {
            seq: current.seq,
            attempt: current.attempt,
            after_us: delay_us + params.request_timeout_us,
        });
    }

    /// A node answered.
    pub fn on_reply(
        &mut self,
        reply: ClientReply,
        rng: &mut SimRng,
        params: &WorkloadParams,
        history: &mut History,
        now: SimTime,
        out: &mut Vec<ClientEffect>,
    ) {
        let Some(current) = &mut self.current else {
            return;
        };
        if reply.seq != current.seq {
            return; // An answer about an operation already finished.
        }
        let is_latest = reply.attempt == current.attempt;
        let from = reply.from;
        let output = match reply.body {
            ReplyBody::Written(outcome) => KvOutput::from_outcome(&outcome),
            ReplyBody::Value(value) => Some(KvOutput::Get(value)),
            ReplyBody::NotLeader { hint } if is_latest => {
                self.on_not_leader(from, hint, rng, params, history, now, out);
                return;
            }
            ReplyBody::Refused if is_latest => {
                current.note_asked(from);
                let to = self.next_endpoint(from, now);
                self.retry_or_give_up(to, RETRY_BACKOFF_US, rng, params, history, now, out);
                return;
            }
            ReplyBody::Unknown if is_latest => {
                current.any_unknown = true;
                current.note_asked(from);
                let to = self.next_endpoint(from, now);
                self.retry_or_give_up(to, RETRY_BACKOFF_US, rng, params, history, now, out);
                return;
            }
            // A refusal of an earlier attempt: the latest one is still running.
            ReplyBody::NotLeader { .. } | ReplyBody::Refused | ReplyBody::Unknown => return,
        };
        // It answered, so it serves: start there next time, and trust it again (a
        // local reader's home serves its reads, which says nothing of who leads).
        let home_read = matches!(current.body, RequestBody::Read { .. })
            && self.issuing
            && self.read_home.is_some();
        if !home_read {
            self.leader_guess = from;
        }
        self.suspects.remove(&from);
        let Some(output) = output else {
            // `Stale`: the store no longer knows this request's result.
            current.any_unknown = true;
            self.finish(history, now, out, params, rng);
            return;
        };
        if let KvOutput::Get(value) = &output {
            self.last_seen.insert(current.key.clone(), value.clone());
        }
        history.complete(current.history_id, OpStatus::Ok(output), now);
        self.current = None;
        self.schedule_next(rng, params, out);
    }

    /// The attempt `attempt` of operation `seq` got no answer in time.
    #[allow(clippy::too_many_arguments)]
    pub fn on_timeout(
        &mut self,
        seq: RequestSeq,
        attempt: u32,
        rng: &mut SimRng,
        params: &WorkloadParams,
        history: &mut History,
        now: SimTime,
        out: &mut Vec<ClientEffect>,
    ) {
        let Some(current) = &mut self.current else {
            return;
        };
        if current.seq != seq || current.attempt != attempt {
            return;
        }
        current.any_unknown = true;
        let silent = current.to;
        current.note_asked(silent);
        let until = now.plus_us(SUSPECT_TIMEOUTS * params.request_timeout_us);
        self.suspects.insert(silent, until);
        let to = self.next_endpoint(silent, now);
        self.retry_or_give_up(to, 0, rng, params, history, now, out);
    }

    /// `from` does not lead: follow its hint for free if it names a node worth
    /// trying, else move on to the next endpoint after a backoff; either way free
    /// while this operation has redirects left.
    #[allow(clippy::too_many_arguments)]
    fn on_not_leader(
        &mut self,
        from: NodeId,
        hint: Option<NodeId>,
        rng: &mut SimRng,
        params: &WorkloadParams,
        history: &mut History,
        now: SimTime,
        out: &mut Vec<ClientEffect>,
    ) {
        let current = self.current.as_mut().expect("running");
        let mut useful = hint.filter(|h| *h != from && self.endpoints.contains(h));
        if let Some(h) = useful {
            if self.suspects.get(&h).is_some_and(|until| now < *until) {
                if current.doubted.contains(&h) {
                    self.suspects.remove(&h);
                } else {
                    current.doubted.push(h);
                    useful = None;
                }
            }
        }
        let (to, delay_us) = match useful {
            Some(hint) => (hint, 0),
            None => {
                current.note_asked(from);
                (self.next_endpoint(from, now), RETRY_BACKOFF_US)
            }
        };
        self.leader_guess = to;
        let redirects_max = REDIRECTS_MAX_PER_ENDPOINT * self.endpoints.len() as u32;
        let current = self.current.as_mut().expect("running");
        if current.redirects < redirects_max {
            current.redirects += 1;
            self.send_request(to, delay_us, params, out);
            return;
        }
        self.retry_or_give_up(to, delay_us, rng, params, history, now, out);
    }

    fn is_suspect(&self, node: NodeId, now: SimTime) -> bool {
        self.suspects.get(&node).is_some_and(|until| now < *until)
    }

    /// The endpoint after `node` in id order (wrapping): the first not asked in this
    /// round of the operation and not suspect, else the first not asked; when every
    /// endpoint was asked, a new round starts with the first that is not suspect.
    fn next_endpoint(&mut self, node: NodeId, now: SimTime) -> NodeId {
        let n = self.endpoints.len();
        let start = self.endpoints.partition_point(|e| *e <= node);
        let order = (0..n).map(|i| self.endpoints[(start + i) % n]);
        let candidates: Vec<NodeId> = order.filter(|e| *e != node || n == 1).collect();
        let asked = self.current.as_ref().map_or(&[][..], |c| &c.asked[..]);
        let fresh = |e: &NodeId| !asked.contains(e);
        let unasked = candidates
            .iter()
            .copied()
            .find(|e| fresh(e) && !self.is_suspect(*e, now))
            .or_else(|| candidates.iter().copied().find(fresh));
        if unasked.is_none() {
            if let Some(current) = self.current.as_mut() {
                current.asked.clear();
            }
        }
        let next = unasked
            .or_else(|| {
                candidates
                    .iter()
                    .copied()
                    .find(|e| !self.is_suspect(*e, now))
            })
            .or_else(|| candidates.first().copied())
            .unwrap_or(node);
        self.leader_guess = next;
        next
    }

    #[allow(clippy::too_many_arguments)]
    fn retry_or_give_up(
        &mut self,
        to: NodeId,
        delay_us: u64,
        rng: &mut SimRng,
        params: &WorkloadParams,
        history: &mut History,
        now: SimTime,
        out: &mut Vec<ClientEffect>,
    ) {
        let current = self.current.as_mut().expect("running");
        if self.issuing && current.tries >= params.attempts_max {
            self.finish(history, now, out, params, rng);
            return;
        }
        current.tries += 1;
        self.send_request(to, delay_us, params, out);
    }

    /// Gives up on the current operation.
    fn finish(
        &mut self,
        history: &mut History,
        now: SimTime,
        out: &mut Vec<ClientEffect>,
        params: &WorkloadParams,
        rng: &mut SimRng,
    ) {
        let current = self.current.take().expect("running");
        let status = if current.any_unknown {
            OpStatus::Unknown
        } else {
            OpStatus::Failed
        };
        history.complete(current.history_id, status, now);
        self.schedule_next(rng, params, out);
    }

    fn schedule_next(
        &mut self,
        rng: &mut SimRng,
        params: &WorkloadParams,
        out: &mut Vec<ClientEffect>,
    ) {
        if self.issuing {
            out.push(ClientEffect::Wake {
                after_us: rng.between(0, params.think_us_max),
            });
        }
    }

    /// Replaces the endpoint list, as an operator does when nodes join or leave
    /// the cluster (an empty list is ignored: a client always has somewhere to go).
    pub fn set_endpoints(&mut self, endpoints: Vec<NodeId>) {
        debug_assert!(
            endpoints.windows(2).all(|w| w[0] < w[1]),
            "sorted, distinct"
        );
        if endpoints.is_empty() {
            return;
        }
        self.endpoints = endpoints;
        self.suspects.retain(|id, _| self.endpoints.contains(id));
        if !self.endpoints.contains(&self.leader_guess) {
            let gone = self.leader_guess;
            let n = self.endpoints.len();
            let start = self.endpoints.partition_point(|e| *e <= gone);
            self.leader_guess = self.endpoints[start % n];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StreamKind;

    fn params() -> WorkloadParams {
        WorkloadParams {
            clients_count: 1,
            keys_count: 1,
            think_us_max: 1_000,
            request_timeout_us: 50_000,
            attempts_max: 3,
            reads: Ppm::ZERO,
            cas: Ppm::ZERO,
            deletes: Ppm::ZERO,
        }
    }

    struct Harness {
        client: Client,
        rng: SimRng,
        history: History,
        out: Vec<ClientEffect>,
    }

    impl Harness {
        fn new() -> Harness {
            Harness {
                client: Client::new(1, 3, NodeId(1)),
                rng: SimRng::new(1, StreamKind::Client),
                history: History::new(),
                out: Vec::new(),
            }
        }

        fn wake(&mut self) {
            self.client.on_wake(
                &mut self.rng,
                &params(),
                &mut self.history,
                SimTime(0),
                &mut self.out,
            );
        }

        fn reply(&mut self, attempt: u32, body: ReplyBody) {
            let reply = ClientReply {
                from: self.client.current.as_ref().map_or(NodeId(1), |c| c.to),
                client: ClientId(1),
                seq: self.seq(),
                attempt,
                body,
            };
            self.client.on_reply(
                reply,
                &mut self.rng,
                &params(),
                &mut self.history,
                SimTime(5),
                &mut self.out,
            );
        }

        fn timeout(&mut self, attempt: u32) {
            self.client.on_timeout(
                self.seq(),
                attempt,
                &mut self.rng,
                &params(),
                &mut self.history,
                SimTime(9),
                &mut self.out,
            );
        }

        /// The sequence number of the operation under way (1 when idle).
        fn seq(&self) -> RequestSeq {
            self.client
                .current
                .as_ref()
                .map_or(RequestSeq(1), |c| c.seq)
        }

        fn sends(&self) -> Vec<(NodeId, u32)> {
            self.out
                .iter()
                .filter_map(|e| match e {
                    ClientEffect::Send { to, request, .. } => Some((*to, request.attempt)),
                    _ => None,
                })
                .collect()
        }
    }

    /// Seed 707 with `--read-lease true`: the leader (node 1 here) timed out on this
    /// client once, and nodes 2 and 3 cannot hear it. The client asks the suspect
    /// once both others said "not the leader" with no hint, instead of walking 2 and
    /// 3 until it gives up.
    #[test]
    fn a_suspect_is_asked_once_every_other_node_refused() {
        let mut h = Harness::new();
        // The first operation: node 1 times out, node 2 serves.
        h.wake();
        h.timeout(1);
        h.reply(2, ReplyBody::Written(Outcome::Put));
        h.out.clear();
        // The next starts at node 2; 2 and 3 cannot hear the leader, node 1 again.
        h.wake();
        h.reply(1, ReplyBody::NotLeader { hint: None });
        h.reply(2, ReplyBody::NotLeader { hint: None });
        let asked: Vec<NodeId> = h.sends().iter().map(|(to, _)| *to).collect();
        assert_eq!(asked, [NodeId(2), NodeId(3), NodeId(1)]);
    }

    /// Seed 143: once every node was asked in a round, a new round starts with the
    /// nodes that are not suspect, rather than with the suspects (two nodes kept
    /// down after the heal, which timed out again and again).
    #[test]
    fn a_new_round_starts_with_the_nodes_not_suspected() {
        let mut h = Harness::new();
        h.wake();
        h.reply(1, ReplyBody::NotLeader { hint: None });
        h.timeout(2);
        h.reply(3, ReplyBody::NotLeader { hint: None });
        let asked: Vec<NodeId> = h.sends().iter().map(|(to, _)| *to).collect();
        assert_eq!(asked, [NodeId(1), NodeId(2), NodeId(3), NodeId(1)]);
    }

    #[test]
    fn a_write_goes_to_the_guess_and_completes_on_its_answer() {
        let mut h = Harness::new();
        h.wake();
        assert_eq!(h.sends(), [(NodeId(1), 1)]);
        h.reply(1, ReplyBody::Written(Outcome::Put));
        assert!(h.client.is_idle());
        assert_eq!(h.history.ops()[0].status, OpStatus::Ok(KvOutput::Put));
    }

    #[test]
    fn not_leader_redirects_to_the_hint_under_the_same_sequence_number() {
        let mut h = Harness::new();
        h.wake();
        h.reply(
            1,
            ReplyBody::NotLeader {
                hint: Some(NodeId(3)),
            },
        );
        assert_eq!(h.sends(), [(NodeId(1), 1), (NodeId(3), 2)]);
        assert!(!h.client.is_idle());
    }

    #[test]
    fn a_timeout_makes_the_outcome_unknown_after_the_last_attempt() {
        let mut h = Harness::new();
        h.wake();
        h.timeout(1);
        h.reply(2, ReplyBody::Refused);
        h.timeout(3);
        assert!(h.client.is_idle());
        assert_eq!(h.history.ops()[0].status, OpStatus::Unknown);
    }

    #[test]
    fn refusals_only_make_a_definite_failure() {
        let mut h = Harness::new();
        h.wake();
        for attempt in 1..=3 {
            h.reply(attempt, ReplyBody::Refused);
        }
        assert_eq!(h.history.ops()[0].status, OpStatus::Failed);
    }

    #[test]
    fn a_late_success_of_an_earlier_attempt_completes_the_operation() {
        let mut h = Harness::new();
        h.wake();
        h.timeout(1);
        h.reply(1, ReplyBody::Written(Outcome::Put));
        assert_eq!(h.history.ops()[0].status, OpStatus::Ok(KvOutput::Put));
    }

    #[test]
    fn after_stop_issuing_the_current_operation_retries_without_limit() {
        let mut h = Harness::new();
        h.wake();
        h.client.stop_issuing();
        for attempt in 1..=10 {
            h.timeout(attempt);
        }
        assert!(!h.client.is_idle());
        assert_eq!(h.sends().len(), 11);
        h.reply(11, ReplyBody::Written(Outcome::Put));
        assert!(h.client.is_idle());
        assert!(
            !h.out.iter().any(|e| matches!(e, ClientEffect::Wake { .. })),
            "no new operation after stop_issuing"
        );
    }

    fn targets(h: &Harness) -> Vec<NodeId> {
        h.sends().into_iter().map(|(to, _)| to).collect()
    }

    #[test]
    fn the_next_operation_starts_at_the_node_that_answered() {
        let mut h = Harness::new();
        h.wake();
        h.reply(1, ReplyBody::NotLeader { hint: None });
        assert_eq!(targets(&h), [NodeId(1), NodeId(2)], "the next endpoint");
        h.reply(2, ReplyBody::Written(Outcome::Put));
        h.out.clear();
        h.wake();
        assert_eq!(targets(&h), [NodeId(2)]);
    }

    #[test]
    fn redirects_cost_no_attempt_up_to_a_bound() {
        let mut h = Harness::new();
        h.wake();
        // Three attempts allowed; twice around the three endpoints for free first.
        for request in 1..=6 {
            h.reply(request, ReplyBody::NotLeader { hint: None });
            assert!(!h.client.is_idle(), "request {request}");
        }
        assert_eq!(
            targets(&h),
            [1, 2, 3, 1, 2, 3, 1].map(NodeId),
            "every endpoint before any twice"
        );
        // Then each redirect is an attempt: the second and third, and the operation
        // gives up at the third answer.
        h.reply(7, ReplyBody::NotLeader { hint: None });
        h.reply(8, ReplyBody::NotLeader { hint: None });
        assert!(!h.client.is_idle());
        h.reply(9, ReplyBody::NotLeader { hint: None });
        assert!(h.client.is_idle(), "then each redirect is an attempt");
        assert_eq!(h.history.ops()[0].status, OpStatus::Failed);
    }

    #[test]
    fn a_node_that_timed_out_is_followed_only_when_a_second_node_names_it() {
        let mut h = Harness::new();
        h.wake();
        h.timeout(1);
        assert_eq!(targets(&h), [NodeId(1), NodeId(2)]);
        let stale = ReplyBody::NotLeader {
            hint: Some(NodeId(1)),
        };
        h.reply(2, stale.clone());
        assert_eq!(targets(&h)[2], NodeId(3), "n1 timed out: not on one word");
        h.reply(3, stale);
        assert_eq!(targets(&h)[3], NodeId(1), "two nodes name it: try it again");
    }
}
