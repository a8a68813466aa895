//! The client handle: a typed, blocking, `Clone + Send` way to talk to a running node.
//!
//! Requests travel to the loop through a bounded channel and wake it through a
//! `mio::Waker`; answers come back through one-shot slots. Many proposals can be in
//! flight from one thread with [`Client::submit`]; proposals that reach the loop
//! together are stepped into the core as one batch (one log append, one message per
//! follower).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::Waker;
use raft_core::{LogIndex, Membership, MembershipChange, NodeId, RoleKind, SharedBytes, Term};
use serde::Serialize;

pub use crate::client_error::{AppendError, ReadError, ShutdownError, UnknownFate};
use crate::envelope::encode_command;
use crate::exit::{LoopExit, StopReason};
use crate::members::{AddrTable, MemberAddrs};
use crate::metrics::NodeMetrics;
use crate::reply::{callback, slot, Pending, Reply, WaitError};
use crate::transport::PeerConnection;

/// Where the leader is, as far as this node knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderHint {
    /// The leader's id.
    pub id: NodeId,
    /// Its raft address (`host:port`), if this node knows it.
    pub addr: Option<String>,
    /// The application's addresses for it (see [`MemberAddrs::app`]), from the
    /// replicated address table or this node's configuration.
    pub app_addrs: BTreeMap<String, String>,
}

impl fmt::Display for LeaderHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addr {
            Some(addr) => write!(f, "{} at {addr}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// A snapshot of a node's state, for status pages and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: RoleKind,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<LeaderHint>,
    /// The highest index known committed.
    pub commit_index: LogIndex,
    /// The highest index handed to the committed stream.
    pub applied_index: LogIndex,
    /// The last index in the log.
    pub last_index: LogIndex,
    /// The last index durable on this node.
    pub persisted_index: LogIndex,
    /// The membership in force (the newest configuration in the log, which may not
    /// be committed yet).
    pub membership: Membership,
    /// The membership of the newest configuration applied (so committed): a change
    /// is done once it shows here.
    pub applied_membership: Membership,
    /// How to reach each member of `membership`, as far as this node knows (members
    /// it knows no address for are left out).
    pub members: AddrTable,
    /// The index of the newest snapshot (0 if none).
    pub snapshot_index: LogIndex,
    /// The peers and the state of this node's connections to them.
    pub peers: Vec<PeerConnection>,
    /// On a leader, each follower's replication progress (empty elsewhere).
    pub replication: BTreeMap<NodeId, raft_core::PeerStatus>,
    /// The address this node listens on.
    pub listen_addr: SocketAddr,
}

/// A request from a client to the loop.
#[derive(Debug)]
pub(crate) enum Request {
    Propose {
        command: SharedBytes,
        reply: Reply<Result<LogIndex, AppendError>>,
    },
    Read {
        reply: Reply<Result<LogIndex, ReadError>>,
    },
    Status {
        reply: Reply<NodeStatus>,
    },
    Metrics {
        reply: Reply<NodeMetrics>,
    },
    TransferLeadership {
        to: NodeId,
    },
    ChangeMembership {
        changes: Vec<MembershipChange>,
        addrs: AddrTable,
        reply: Reply<Result<LogIndex, AppendError>>,
    },
    PublishAddrs {
        addrs: AddrTable,
        reply: Reply<Result<LogIndex, AppendError>>,
    },
    Compact {
        up_to: LogIndex,
        data: SharedBytes,
    },
    Shutdown,
}

/// The sending side of the loop's request channel: a bounded queue plus the waker.
/// The waker is only rung when the loop may be asleep (`wake_pending` was clear), so
/// a burst of requests costs one wake-up, not one per request.
#[derive(Debug)]
pub(crate) struct Mailbox {
    tx: SyncSender<Request>,
    waker: Arc<Waker>,
    wake_pending: Arc<AtomicBool>,
}

impl Mailbox {
    pub(crate) fn new(
        tx: SyncSender<Request>,
        waker: Arc<Waker>,
        wake_pending: Arc<AtomicBool>,
    ) -> Self {
        Mailbox {
            tx,
            waker,
            wake_pending,
        }
    }

    /// Queues a request (blocking while the queue is full) and wakes the loop.
    pub(crate) fn send(&self, request: Request) -> Result<(), ShutdownError> {
        // Try without blocking first; when the queue is full, make sure the loop is
        // awake to drain it before blocking.
        let request = match self.tx.try_send(request) {
            Ok(()) => None,
            Err(TrySendError::Full(request)) => Some(request),
            Err(TrySendError::Disconnected(_)) => return Err(ShutdownError),
        };
        if let Some(request) = request {
            let _ = self.waker.wake();
            self.tx.send(request).map_err(|_| ShutdownError)?;
        }
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            self.waker.wake().map_err(|_| ShutdownError)?;
        }
        Ok(())
    }
}

/// The loop's side of the request channel.
#[derive(Debug)]
pub(crate) struct Inbox {
    pub(crate) rx: Receiver<Request>,
    pub(crate) wake_pending: Arc<AtomicBool>,
}

/// What the last client handle owns: the mailbox and, when the loop runs on a thread
/// of ours, that thread.
#[derive(Debug)]
struct ClientShared {
    mailbox: Mailbox,
    thread: Mutex<Option<JoinHandle<()>>>,
    listen_addr: SocketAddr,
    /// Why the loop stopped, once it has.
    exit: Arc<LoopExit>,
    /// Larger commands are refused with `TooLarge` before they reach the loop.
    command_bytes_max: usize,
}

impl ClientShared {
    fn shutdown(&self) {
        let _ = self.mailbox.send(Request::Shutdown);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("the raft event loop thread panicked");
            }
        }
    }
}

impl Drop for ClientShared {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A handle to a running node, typed by the application's command.
///
/// Cloning is cheap; the node shuts down when [`shutdown`](Self::shutdown) is called
/// or the last clone is dropped.
pub struct Client<T> {
    shared: Arc<ClientShared>,
    _command: PhantomData<fn(T)>,
}

impl<T> Clone for Client<T> {
    fn clone(&self) -> Self {
        Client {
            shared: Arc::clone(&self.shared),
            _command: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("listen_addr", &self.shared.listen_addr)
            .finish()
    }
}

/// A proposal in flight: wait for its index, or poll it.
#[derive(Debug)]
pub struct Proposal {
    pending: Pending<Result<LogIndex, AppendError>>,
}

// A reply slot is abandoned only for a request the loop never took: the loop answers
// every proposal it took, even when it stops (`Unknown(NodeStopped)` for those it
// had stepped into the core). So an abandoned proposal was never proposed:
// `Shutdown`, not applied.
impl Proposal {
    /// Blocks until the proposal's fate is known: its index once it commits, or why
    /// it did not (see [`AppendError`]: "not applied", or unknown because the node
    /// stopped first). It may block for as long as the cluster takes to commit the
    /// proposal's index, also after this node stepped down; use
    /// [`wait_timeout`](Self::wait_timeout) to bound the wait.
    pub fn wait(self) -> Result<LogIndex, AppendError> {
        self.pending.wait().unwrap_or(Err(AppendError::Shutdown))
    }

    /// Waits at most `timeout`; `None` if the outcome is still unknown. A caller that
    /// gives up then must treat the proposal as possibly applied (it may still
    /// commit): tell its own client "unknown", never "not applied".
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<LogIndex, AppendError>> {
        match self.pending.wait_timeout(timeout) {
            Ok(result) => Some(result),
            Err(WaitError::Timeout) => None,
            Err(_) => Some(Err(AppendError::Shutdown)),
        }
    }

    /// Whether the outcome is known.
    pub fn is_done(&self) -> bool {
        self.pending.is_done()
    }

    /// The outcome if it is known, without blocking (`None`: still pending).
    pub fn try_result(&self) -> Option<Result<LogIndex, AppendError>> {
        match self.pending.try_take() {
            Ok(result) => Some(result),
            Err(WaitError::Timeout) => None,
            Err(_) => Some(Err(AppendError::Shutdown)),
        }
    }
}

impl<T: Serialize> Client<T> {
    pub(crate) fn new(
        mailbox: Mailbox,
        listen_addr: SocketAddr,
        exit: Arc<LoopExit>,
        command_bytes_max: usize,
    ) -> Self {
        let shared = ClientShared {
            mailbox,
            thread: Mutex::new(None),
            listen_addr,
            exit,
            command_bytes_max,
        };
        Client {
            shared: Arc::new(shared),
            _command: PhantomData,
        }
    }

    pub(crate) fn set_thread(&self, thread: JoinHandle<()>) {
        *self.shared.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
    }

    /// The address the node listens on for its peers.
    pub fn listen_addr(&self) -> SocketAddr {
        self.shared.listen_addr
    }

    /// Why the node's loop stopped, if it has (without blocking).
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.shared.exit.wait(Some(Duration::ZERO))
    }

    /// Blocks until the node's loop stops (at most `timeout`, if given) and says why;
    /// `None` if it still runs. A process that serves through this node should exit
    /// when the loop failed ([`StopReason::Failed`]): the node cannot make its state
    /// durable, and will not recover by itself.
    pub fn wait_stopped(&self, timeout: Option<Duration>) -> Option<StopReason> {
        self.shared.exit.wait(timeout)
    }

    /// The largest encoded command this node accepts (`command_bytes_max`).
    pub fn command_bytes_max(&self) -> usize {
        self.shared.command_bytes_max
    }

    /// Proposes `command` and blocks until its fate is known (see
    /// [`Proposal::wait`]).
    pub fn append_cmd(&self, command: T) -> Result<LogIndex, AppendError> {
        self.submit(&command)?.wait()
    }

    /// Proposes `command` and returns at once with a handle to wait on, so one thread
    /// can keep many proposals in flight. Blocks only while the node's request queue
    /// is full.
    pub fn submit(&self, command: &T) -> Result<Proposal, AppendError> {
        let bytes = encode_command(command).map_err(|e| AppendError::Encode(e.to_string()))?;
        self.submit_bytes(bytes)
    }

    fn submit_bytes(&self, command: SharedBytes) -> Result<Proposal, AppendError> {
        let max = self.shared.command_bytes_max;
        if command.len() > max {
            return Err(AppendError::TooLarge {
                bytes: command.len(),
                max,
            });
        }
        let (reply, pending) = slot();
        self.shared
            .mailbox
            .send(Request::Propose { command, reply })
            .map_err(|_| AppendError::Shutdown)?;
        Ok(Proposal { pending })
    }

    /// Proposes `command` without blocking a thread on its fate: `then` is called
    /// exactly once with what [`Proposal::wait`] would return, on the loop's thread
    /// (or on this one, if the request never reached the loop). It must be quick, as
    /// the loop waits for it: hand the answer to the application's own event loop.
    /// Blocks only while the node's request queue is full.
    pub fn submit_then(
        &self,
        command: &T,
        then: impl FnOnce(Result<LogIndex, AppendError>) + Send + 'static,
    ) {
        let bytes = match encode_command(command) {
            Ok(bytes) => bytes,
            Err(e) => return then(Err(AppendError::Encode(e.to_string()))),
        };
        let max = self.shared.command_bytes_max;
        if bytes.len() > max {
            return then(Err(AppendError::TooLarge {
                bytes: bytes.len(),
                max,
            }));
        }
        // An unanswered reply (the loop stopped before taking it) was never proposed.
        let reply = callback(move |answer| then(answer.unwrap_or(Err(AppendError::Shutdown))));
        let request = Request::Propose {
            command: bytes,
            reply,
        };
        // A request the mailbox refuses is dropped with its reply, which answers.
        let _ = self.shared.mailbox.send(request);
    }

    /// A linearizable read barrier like [`read_index`](Self::read_index), without
    /// blocking a thread on it: `then` is called exactly once with the barrier (or why
    /// there is none), on the loop's thread (or on this one, if the request never
    /// reached the loop); it must be quick. One barrier serves every read that started
    /// before this call, so an application can ask once for a whole batch of reads;
    /// barriers asked for while the leader confirms an earlier one share its next
    /// heartbeat round.
    pub fn read_index_then(&self, then: impl FnOnce(Result<LogIndex, ReadError>) + Send + 'static) {
        let reply = callback(move |answer| then(answer.unwrap_or(Err(ReadError::Shutdown))));
        let _ = self.shared.mailbox.send(Request::Read { reply });
    }

    /// A linearizable read barrier (ReadIndex, thesis §6.4). Returns an index `r`: once
    /// the application has applied the committed stream through `r`
    /// ([`CommittedStream::last_index`](crate::CommittedStream::last_index) `>= r`), a
    /// read of its state reflects every write committed before this call.
    pub fn read_index(&self) -> Result<LogIndex, ReadError> {
        let (reply, pending) = slot();
        self.shared
            .mailbox
            .send(Request::Read { reply })
            .map_err(|_| ReadError::Shutdown)?;
        pending.wait().unwrap_or(Err(ReadError::Shutdown))
    }

    /// The node's role, term, leader, indexes, membership and peers.
    pub fn status(&self) -> Result<NodeStatus, ShutdownError> {
        let (reply, pending) = slot();
        self.shared.mailbox.send(Request::Status { reply })?;
        pending.wait().map_err(|_| ShutdownError)
    }

    /// The node's counters (proposals, reads, elections, fsync latency, traffic per
    /// peer...), for metrics exporters; see [`NodeMetrics`].
    pub fn metrics(&self) -> Result<NodeMetrics, ShutdownError> {
        let (reply, pending) = slot();
        self.shared.mailbox.send(Request::Metrics { reply })?;
        pending.wait().map_err(|_| ShutdownError)
    }

    /// Asks the leader to hand leadership to `to` (thesis §3.10). Returns once the
    /// request reached the node; watch [`status`](Self::status) for the outcome.
    pub fn transfer_leadership(&self, to: NodeId) -> Result<(), ShutdownError> {
        self.shared.mailbox.send(Request::TransferLeadership { to })
    }

    /// Changes the membership (on the leader) and blocks until the configuration
    /// entry commits (for a voter change, the joint configuration; the leader then
    /// leaves it by itself: watch [`NodeStatus::applied_membership`]).
    ///
    /// `addrs` says how to reach nodes being added (and may re-address members). The
    /// leader dials them at once and proposes them as an address record right before
    /// the change, so every member learns them in log order; see
    /// [`members`](crate::members). A change is refused with
    /// `Dropped(MembershipChangePending)` while another is in progress or before the
    /// leader has committed an entry of its term: retry.
    pub fn change_membership(
        &self,
        changes: Vec<MembershipChange>,
        addrs: impl IntoIterator<Item = (NodeId, MemberAddrs)>,
    ) -> Result<LogIndex, AppendError> {
        let (reply, pending) = slot();
        let request = Request::ChangeMembership {
            changes,
            addrs: addrs.into_iter().collect(),
            reply,
        };
        self.shared
            .mailbox
            .send(request)
            .map_err(|_| AppendError::Shutdown)?;
        pending.wait().unwrap_or(Err(AppendError::Shutdown))
    }

    /// Publishes members' addresses (on the leader) without changing the membership,
    /// for a member that moved: every node learns them when the record commits.
    /// Blocks until it does; returns the record's index.
    pub fn publish_member_addrs(
        &self,
        addrs: impl IntoIterator<Item = (NodeId, MemberAddrs)>,
    ) -> Result<LogIndex, AppendError> {
        let (reply, pending) = slot();
        let request = Request::PublishAddrs {
            addrs: addrs.into_iter().collect(),
            reply,
        };
        self.shared
            .mailbox
            .send(request)
            .map_err(|_| AppendError::Shutdown)?;
        pending.wait().unwrap_or(Err(AppendError::Shutdown))
    }

    /// Hands the core a snapshot of the application's state as of `up_to` (an index
    /// it has applied), so the log before it can be dropped.
    pub fn compact(&self, up_to: LogIndex, data: Vec<u8>) -> Result<(), ShutdownError> {
        self.shared.mailbox.send(Request::Compact {
            up_to,
            data: data.into(),
        })
    }

    /// Stops the node: the loop finishes its fsync, closes its sockets and (when it
    /// runs on raft-mio's thread) is joined. Later calls on any clone fail with
    /// `Shutdown`.
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }
}
