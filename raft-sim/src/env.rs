//! What every node's actions touch, and what can happen: the event queue and its
//! events, the network, the checkers, the coverage counters, the digest and the
//! trace. `exec` carries out one node's actions against an [`Env`]; the world owns
//! the hosts and pops the events.

use kv_model::RequestSeq;
use raft_core::{Message, NodeId};

use crate::checkers::commit::CommitChecker;
use crate::checkers::disruption::DisruptionChecker;
use crate::checkers::election::ElectionChecker;
use crate::checkers::log_matching::LogMatchingChecker;
use crate::checkers::membership::MembershipChecker;
use crate::checkers::state::StateChecker;
use crate::checkers::{Violation, ViolationKind};
use crate::client::{ClientReply, ClientRequest};
use crate::coverage::Coverage;
use crate::digest::Digest;
use crate::network::{Held, Network, HELD_MAX};
use crate::params::SimParams;
use crate::rng::Streams;
use crate::scheduler::Scheduler;
use crate::time::SimTime;
use crate::timeline::{Arrow, Timeline};
use crate::trace::Trace;

/// Something that happens at an instant of virtual time.
#[derive(Debug)]
pub(crate) enum Ev {
    /// A node's clock ticks (ignored if the node crashed since: `life`).
    Tick { node: NodeId, life: u32 },
    /// A message arrives (postcard bytes, decoded on arrival).
    Deliver {
        from: NodeId,
        to: NodeId,
        bytes: Vec<u8>,
        sent: SimTime,
    },
    /// A disk's fsync completes.
    FsyncDone { node: NodeId, epoch: u32 },
    /// A client request reaches a node.
    Request { to: NodeId, request: ClientRequest },
    /// A node's answer reaches a client.
    Reply { client: usize, reply: ClientReply },
    /// A client starts its next operation.
    ClientWake { client: usize },
    /// A client's attempt timed out.
    ClientTimeout {
        client: usize,
        seq: RequestSeq,
        attempt: u32,
    },
    /// The fault plan's entry fires.
    Fault { index: usize },
    /// A partition ends (unless a newer one replaced it).
    HealPartition { epoch: u64 },
    /// A crashed node restarts.
    Restart { node: NodeId, life: u32 },
    /// A node compacts its log into a snapshot of its state machine.
    Compact { node: NodeId, life: u32 },
    /// The fault phase is over: heal, and check liveness.
    EndFaultPhase,
    /// An armed fault fires at the leader it was aimed at (if still leading).
    AimedFault {
        node: NodeId,
        life: u32,
        fault: crate::faults::Fault,
    },
    /// An armed membership change fires at the leader it was aimed at.
    AimedMembership {
        node: NodeId,
        life: u32,
        kind: crate::faults::MembershipKind,
    },
    /// A crash aimed at a node in the middle of receiving a snapshot.
    InstallCrash {
        node: NodeId,
        life: u32,
        down_ms: u32,
    },
    /// A crash aimed at a leader whose disk has not synced its latest appends.
    UnsyncedLeaderCrash {
        node: NodeId,
        life: u32,
        down_ms: u32,
    },
}

/// Shared machinery every node's actions touch.
pub(crate) struct Env {
    pub params: SimParams,
    pub sched: Scheduler<Ev>,
    pub streams: Streams,
    pub net: Network,
    pub election: ElectionChecker,
    pub logs: LogMatchingChecker,
    pub commits: CommitChecker,
    pub members: MembershipChecker,
    pub states: StateChecker,
    pub disruption: DisruptionChecker,
    /// The newest acknowledgement per leader and follower (to spot older ones).
    pub acks: crate::delivery::AckWatermarks,
    /// What replication costs: probes per catch-up, replication messages.
    pub cost: crate::efficiency::CostTracker,
    /// Membership changes in flight: the changes, the leader asked to make them, and
    /// the voters it had then.
    pub membership_proposals: std::collections::BTreeMap<
        raft_core::ProposalId,
        (
            Vec<raft_core::MembershipChange>,
            NodeId,
            std::collections::BTreeSet<NodeId>,
        ),
    >,
    pub coverage: Coverage,
    pub digest: Digest,
    pub trace: Trace,
    pub timeline: Option<Timeline>,
    pub violation: Option<Violation>,
    pub checks: Checks,
    pub proposal_next: u64,
    pub read_next: u64,
    /// Messages held on cut links (encoded, with when they were sent), released by
    /// [`Env::release_held`] once their link is up again.
    pub held: Vec<Held<(Vec<u8>, SimTime)>>,
}

impl Env {
    /// Records the first violation (later ones are consequences).
    pub fn violate(&mut self, mut violation: Violation) {
        if self.violation.is_none() {
            violation.at = self.sched.now();
            if self.trace.is_on() {
                self.trace
                    .line(format!("{} VIOLATION {violation}", self.sched.now()));
            }
            self.violation = Some(violation);
        }
    }

    /// Records a violation if `result` is one.
    pub fn check(&mut self, result: Result<(), Violation>) {
        if let Err(v) = result {
            self.violate(v);
        }
    }

    /// Schedules `ev` after `delay_us`; a full queue is a violation of its own.
    pub fn schedule_in(&mut self, delay_us: u64, ev: Ev) {
        let at = self.sched.now().plus_us(delay_us);
        self.schedule_at(at, ev);
    }

    /// Schedules `ev` at `at` (not in the past); a full queue is a violation of its
    /// own: the run ends with it rather than silently losing the event.
    pub fn schedule_at(&mut self, at: SimTime, ev: Ev) {
        if let Err(full) = self.sched.schedule_at(at, ev) {
            self.violate(Violation {
                kind: ViolationKind::Contract,
                at: full.at,
                node: None,
                detail: "the event queue overflowed (a runaway)".into(),
            });
        }
    }

    /// A trace line, formatted only when tracing.
    pub fn trace(&mut self, line: impl FnOnce() -> String) {
        if self.trace.is_on() {
            let text = format!("{} {}", self.sched.now(), line());
            self.trace.line(text);
        }
    }

    /// Sends `msg` through the network: encoded with postcard, then delivered 0, 1
    /// or 2 times.
    pub fn send(&mut self, msg: &Message) {
        let bytes = postcard::to_allocvec(msg).expect("messages always encode");
        self.cost.on_send(&msg.body);
        self.digest.write(&bytes);
        let fate = self.net.send(
            &mut self.streams.network,
            &mut self.streams.late,
            msg.from,
            msg.to,
        );
        let now = self.sched.now();
        match fate {
            crate::network::Fate::Dropped(_) => {
                if let Some(t) = &mut self.timeline {
                    t.arrow(Arrow {
                        from: msg.from,
                        to: msg.to,
                        sent: now,
                        arrived: None,
                        kind: msg.body.kind(),
                    });
                }
            }
            crate::network::Fate::Held if self.held.len() < HELD_MAX => {
                self.held.push(Held {
                    from: msg.from,
                    to: msg.to,
                    message: (bytes, now),
                });
            }
            crate::network::Fate::Held => self.coverage.msgs_held_overflow += 1,
            crate::network::Fate::Delivered { delays_us } => {
                for delay_us in delays_us.into_iter().flatten() {
                    self.schedule_in(
                        delay_us,
                        Ev::Deliver {
                            from: msg.from,
                            to: msg.to,
                            bytes: bytes.clone(),
                            sent: now,
                        },
                    );
                }
            }
        }
    }

    /// Schedules the delivery of every held message whose link is up again (call
    /// after every change of the links).
    pub fn release_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let released = self
            .net
            .release_held(&mut self.streams.late, &mut self.held);
        for (held, delay_us) in released {
            let (bytes, sent) = held.message;
            self.schedule_in(
                delay_us,
                Ev::Deliver {
                    from: held.from,
                    to: held.to,
                    bytes,
                    sent,
                },
            );
        }
    }

    /// The one-way delay between a client and a node.
    pub fn client_delay_us(&mut self) -> u64 {
        self.streams
            .network
            .between(100, self.params.client_delay_us_max.max(100))
    }
}

/// Which optional checkers run. Every checker is on by default; turning one off
/// shows what the others would catch on their own (the mutants script uses it to
/// show the end-to-end consequence of a durability bug, and that a bug only the
/// disruption checker or a budget catches survives without it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checks {
    /// Check every send against the simulated disk (the persistence contract).
    pub durability: bool,
    /// Fail a run whose leader is deposed while in contact with a quorum, where
    /// PreVote and CheckQuorum are both on (the depositions are counted regardless).
    pub disruption: bool,
    /// Fail a run that breaks an efficiency budget.
    pub budgets: bool,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            durability: true,
            disruption: true,
            budgets: true,
        }
    }
}
