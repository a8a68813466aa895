//! The event loop of one node: a single-threaded `mio::Poll` over the peer listener,
//! the peer connections, the client waker, and the tick deadline.
//!
//! ## One turn
//! 1. Poll for readiness, sleeping at most until the next tick or transport deadline.
//! 2. Gather: decode peer messages, drain client requests, count due ticks.
//! 3. Step every event into the core (`step_into`, one reused action buffer) and carry
//!    out the actions in order: persistence is written (not yet synced), sends are
//!    queued, applies are batched for the application.
//! 4. Flush the sockets: a leader's new entries reach its followers while it fsyncs
//!    its own copy (thesis §10.2.1).
//! 5. Group commit: if an fsync thread is idle and something was written since the
//!    last sync started, start one `fdatasync` covering everything written so far.
//!    The loop keeps turning meanwhile (reading acknowledgements, taking proposals,
//!    writing the next batch); when the sync reports, one `Event::Persisted` is stepped and the actions it releases
//!    (vote grants, append acknowledgements: thesis §3.8) are carried out like the
//!    rest.
//! 6. Hand the applied entries to the committed stream, answer clients, flush again.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Waker};
use raft_core::{
    Action, DropReason, Entry, Event, LogIndex, Message, NodeId, Proposal, RaftNode, RoleKind,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::{AppendError, Client, Inbox, LeaderHint, Mailbox, NodeStatus, ReadError};
use crate::clock::{self, Ticker};
use crate::committed::{CommittedStream, Delivery};
use crate::config::{Listen, RaftConfig};
use crate::error::{LoopError, StartError};
use crate::exit::{LoopExit, StopReason};
use crate::fsync_thread::FsyncThreads;
use crate::metrics::NodeMetrics;
use crate::outlet::Outlet;
use crate::storage::Storage;
use crate::transport::{Transport, WAKER_TOKEN};

mod bootstrap;
mod peers;
mod persistence;
mod requests;

use self::peers::Members;
use self::persistence::Persistence;
use self::requests::Requests;

/// Readiness events taken from one poll.
const EVENTS_PER_POLL_MAX: usize = 1024;

/// Whether the loop goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep turning.
    Continue,
    /// Shutdown was requested and is done: drop the loop.
    Stop,
}

/// A node's event loop, for users who drive it on a thread of their own; most users
/// call [`run`](crate::run), which drives it on a thread of raft-mio's.
pub struct NodeLoop {
    core: RaftNode,
    /// The reused action buffer of `step_into`.
    actions: Vec<Action>,
    /// What the loop waits on.
    io: Io,
    /// What this turn gathered for the core.
    gathered: Gathered,
    /// Client requests in flight.
    requests: Requests,
    /// Storage and its fsync threads.
    persistence: Persistence,
    /// What the application has been handed.
    applied: Applied,
    /// Members, their addresses, and the loop's own proposals about them.
    members: Members,
    /// What the loop counted, for [`Client::metrics`].
    metrics: NodeMetrics,
    /// Whether and why the loop stops, and its one start-up action.
    lifecycle: Lifecycle,
}

/// What the loop waits on: the poll and its events, the peer transport, the ticks.
#[derive(Debug)]
struct Io {
    poll: Poll,
    events: Events,
    transport: Transport,
    ticker: Ticker,
    listen_addr: SocketAddr,
}

/// The events of one turn, gathered before any is stepped.
#[derive(Debug, Default)]
struct Gathered {
    /// Messages from peers.
    incoming: Vec<Message>,
    /// Client proposals, stepped in batches of at most `proposal_batch_max`.
    proposals: Vec<Proposal>,
    /// Loop-generated events (reads, transfers...) in arrival order.
    other_events: Vec<Event>,
    proposal_batch_max: usize,
}

impl Gathered {
    /// The oldest `proposal_batch_max` proposals (or fewer), if any are waiting.
    fn take_proposal_batch(&mut self) -> Option<Vec<Proposal>> {
        if self.proposals.is_empty() {
            return None;
        }
        let split_at = self.proposals.len().min(self.proposal_batch_max);
        let rest = self.proposals.split_off(split_at);
        Some(std::mem::replace(&mut self.proposals, rest))
    }
}

/// The application's side: applied entries on their way to the committed stream.
#[derive(Debug)]
struct Applied {
    /// The committed stream's sending end.
    outlet: Outlet,
    /// Entries applied this turn, not handed over yet.
    batch: Vec<Entry>,
    /// The last index handed over (or about to be, in `batch`).
    index: LogIndex,
}

/// How the loop starts and stops.
#[derive(Debug)]
struct Lifecycle {
    /// Campaign once connected to a majority (a new cluster's preferred leader).
    campaign_armed: bool,
    /// Shutdown was requested; the loop stops at the end of this turn.
    shutting_down: bool,
    /// Where clients learn why the loop stopped.
    exit: Arc<LoopExit>,
}

impl NodeLoop {
    /// Opens the node's storage, binds its listener and builds the core. Returns the
    /// loop (call [`turn`](Self::turn) or [`run`](Self::run)), a client handle and the
    /// committed stream.
    pub fn new<T: Serialize + DeserializeOwned>(
        config: RaftConfig,
    ) -> Result<(NodeLoop, Client<T>, CommittedStream<T>), StartError> {
        config.validate().map_err(StartError::Config)?;
        let (storage, restored) =
            Storage::open(&config.data_dir, config.storage.clone()).map_err(StartError::Storage)?;
        let (directory, applied_membership, restore) =
            peers::restored_directory(&config, &restored)?;
        let campaign_armed = config.campaign_at_bootstrap && bootstrap::is_fresh(&restored);
        // The application starts from the snapshot, if any.
        let applied_index = restored
            .snapshot
            .as_ref()
            .map_or(LogIndex(0), |s| s.meta.last_index);
        let core = RaftNode::new(config.core.clone(), restored).map_err(StartError::Core)?;
        let listener = bind_listener(&config)?;
        let listen_addr = listener
            .local_addr()
            .map_err(|e| StartError::io("read the listener's address", "", e))?;
        let poll = Poll::new().map_err(|e| StartError::io("create the poll", "", e))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER_TOKEN)
                .map_err(|e| StartError::io("create the waker", "", e))?,
        );
        let now = clock::now();
        let transport = Transport::new(
            listener,
            &config.peers,
            config.transport_settings(),
            poll.registry(),
            Arc::clone(&waker),
            now,
        )
        .map_err(|e| StartError::io("register the listener", &listen_addr.to_string(), e))?;
        let name = format!("raft-fsync-{}", config.id.0);
        let fsync = FsyncThreads::spawn(&name, config.fsyncs_in_flight_max, Arc::clone(&waker))
            .map_err(|e| StartError::io("spawn the fsync thread", "", e))?;
        let (tx, rx) = sync_channel(config.client_queue_max);
        let wake_pending = Arc::new(AtomicBool::new(false));
        let (committed_tx, committed_rx) = sync_channel(config.committed_queue_max);
        if let Some(restore) = restore {
            let _ = committed_tx.send(restore);
        }
        tracing::info!(
            node = %config.id, %listen_addr, data_dir = %config.data_dir.display(),
            term = %core.term(), last_index = %core.last_index(), "raft node started"
        );
        let io = Io {
            poll,
            events: Events::with_capacity(EVENTS_PER_POLL_MAX),
            transport,
            ticker: Ticker::new(
                config.tick_interval,
                now,
                clock::catch_up_ticks_max(&config.core),
            ),
            listen_addr,
        };
        let inbox = Inbox {
            rx,
            wake_pending: Arc::clone(&wake_pending),
        };
        let applied = Applied {
            outlet: Outlet::new(committed_tx, config.committed_backlog_entries_max),
            batch: Vec::new(),
            index: applied_index,
        };
        let members = Members::new(directory, applied_membership, config.command_bytes_max);
        let mut node = NodeLoop {
            core,
            actions: Vec::new(),
            io,
            gathered: Gathered {
                proposal_batch_max: config.proposal_batch_max,
                ..Gathered::default()
            },
            requests: Requests::new(inbox, config.client_queue_max),
            persistence: Persistence { storage, fsync },
            applied,
            members,
            metrics: NodeMetrics::default(),
            lifecycle: Lifecycle {
                campaign_armed,
                shutting_down: false,
                exit: Arc::new(LoopExit::default()),
            },
        };
        // The log may have added members the configuration does not name, or removed
        // some it does.
        node.reconcile_peers();
        let client = Client::new(
            Mailbox::new(tx, waker, wake_pending),
            listen_addr,
            Arc::clone(&node.lifecycle.exit),
            config.command_bytes_max,
        );
        Ok((node, client, CommittedStream::new(committed_rx)))
    }

    /// The address the node listens on.
    pub fn listen_addr(&self) -> SocketAddr {
        self.io.listen_addr
    }

    /// The core, read-only (for tests and status pages).
    pub fn core(&self) -> &RaftNode {
        &self.core
    }

    /// Turns until shutdown is requested (or storage fails: a node that cannot make
    /// its state durable must not go on). Clients learn why it stopped from
    /// [`Client::wait_stopped`] before this returns.
    pub fn run(mut self) -> Result<(), Arc<LoopError>> {
        loop {
            match self.turn() {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => {
                    tracing::info!(node = %self.core.id(), "raft node stopped");
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One turn of the loop (see the module docs). Blocks at most until the next tick.
    /// An error is final: the loop must not turn again (a failed `fdatasync` is never
    /// retried, see [`StorageError`](crate::storage::StorageError)); clients see
    /// [`StopReason::Failed`].
    pub fn turn(&mut self) -> Result<Flow, Arc<LoopError>> {
        match self.turn_once() {
            Ok(Flow::Stop) => {
                self.lifecycle.exit.record(StopReason::Requested);
                Ok(Flow::Stop)
            }
            Ok(Flow::Continue) => Ok(Flow::Continue),
            Err(e) => {
                tracing::error!(node = %self.core.id(), "raft node stopping: {e}");
                let e = Arc::new(e);
                self.lifecycle
                    .exit
                    .record(StopReason::Failed(Arc::clone(&e)));
                Err(e)
            }
        }
    }

    fn turn_once(&mut self) -> Result<Flow, LoopError> {
        debug_assert!(
            !self.lifecycle.exit.is_recorded(),
            "a stopped loop turned again"
        );
        self.wait_for_events()?;
        let now = clock::now();
        self.gather(now);
        self.take_finished_sync()?;
        self.maybe_campaign_at_bootstrap();
        self.step_gathered(now);
        self.execute_actions()?;
        self.maybe_publish_addrs();
        // The leader's entries go out while it syncs its own copy.
        self.io.transport.flush(self.io.poll.registry(), now);
        self.group_commit()?;
        self.deliver_applies();
        self.applied.outlet.flush();
        self.io.transport.flush(self.io.poll.registry(), now);
        if self.lifecycle.shutting_down {
            self.finish_for_shutdown()?;
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }

    fn wait_for_events(&mut self) -> Result<(), LoopError> {
        let now = clock::now();
        let busy = self.requests.left
            || self.io.transport.has_pending_reads()
            || self.lifecycle.shutting_down
            || !self.gathered.other_events.is_empty();
        let timeout = if busy {
            Duration::ZERO
        } else {
            let deadline = self
                .io
                .transport
                .next_deadline()
                .map_or(self.io.ticker.next_deadline(), |d| {
                    d.min(self.io.ticker.next_deadline())
                });
            clock::time_until(deadline, now)
        };
        match self.io.poll.poll(&mut self.io.events, Some(timeout)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                self.io.events.clear();
                Ok(())
            }
            Err(e) => Err(LoopError::Poll(e)),
        }
    }

    fn gather(&mut self, now: Instant) {
        let registry = self.io.poll.registry();
        let mut woken = false;
        for event in self.io.events.iter() {
            if event.token() == WAKER_TOKEN {
                woken = true;
            } else {
                self.io.transport.on_event(
                    registry,
                    event.token(),
                    now,
                    &mut self.gathered.incoming,
                );
            }
        }
        self.io
            .transport
            .read_pending(registry, &mut self.gathered.incoming);
        if woken {
            self.io.transport.on_resolved(registry, now);
        }
        self.io.transport.on_timers(registry, now);
        self.drain_requests(now);
    }

    /// Steps everything gathered into the core; actions pile up in `self.actions`.
    ///
    /// Messages first (a heartbeat that arrived during a stall resets the election
    /// timer before the stall's ticks count), then the ticks due, then what clients
    /// asked: a read must meet the core's clock as it is now, or a lease that ran out
    /// during a stall would still answer it.
    fn step_gathered(&mut self, now: Instant) {
        for message in self.gathered.incoming.drain(..) {
            self.core
                .step_into(Event::Message(message), &mut self.actions);
        }
        for _ in 0..self.io.ticker.due_ticks(now) {
            self.core.step_into(Event::Tick, &mut self.actions);
        }
        while let Some(batch) = self.gathered.take_proposal_batch() {
            self.core
                .step_into(Event::Propose(batch), &mut self.actions);
        }
        for event in self.gathered.other_events.drain(..) {
            self.core.step_into(event, &mut self.actions);
        }
    }

    /// Carries out the buffered actions in order.
    fn execute_actions(&mut self) -> Result<(), LoopError> {
        let mut actions = std::mem::take(&mut self.actions);
        for action in actions.drain(..) {
            self.execute(action)?;
        }
        // Keep the buffer's capacity for the next step.
        debug_assert!(self.actions.is_empty());
        self.actions = actions;
        Ok(())
    }

    fn execute(&mut self, action: Action) -> Result<(), LoopError> {
        self.metrics.count(&action, self.core.role());
        match action {
            Action::PersistHardState { .. } | Action::AppendToLog { .. } => {
                self.persistence
                    .storage
                    .write(&action)
                    .map_err(LoopError::Storage)?;
            }
            Action::PersistSnapshot { ref snapshot, .. } => {
                self.members.directory.compact(snapshot.meta.last_index);
                self.persistence
                    .storage
                    .write(&action)
                    .map_err(LoopError::Storage)?;
            }
            Action::Send(message) => self.io.transport.send(&message),
            Action::Apply(entries) => self.on_apply(entries),
            Action::RestoreSnapshot(snapshot) => self.on_restore(*snapshot)?,
            Action::ReadReady { id, read_index } => {
                // The application must see the applies this read depends on first.
                self.deliver_applies();
                if let Some(reply) = self.requests.reads.remove(&id) {
                    reply.send(Ok(read_index));
                }
            }
            Action::ReadFailed { id, reason } => {
                if let Some(reply) = self.requests.reads.remove(&id) {
                    reply.send(Err(ReadError::Failed(reason)));
                }
            }
            Action::ProposalAccepted { .. } => {}
            Action::ProposalCommitted { id, index } => {
                self.deliver_applies();
                self.forget_proposal(id);
                if let Some(reply) = self.requests.proposals.remove(&id) {
                    reply.send(Ok(index));
                }
            }
            Action::ProposalDropped { id, reason } => {
                if self.forget_proposal(id) {
                    // A refused change leaves no member behind: the nodes it would
                    // have added are no longer dialed.
                    self.reconcile_peers();
                }
                if let Some(reply) = self.requests.proposals.remove(&id) {
                    reply.send(Err(self.append_error(reason)));
                }
            }
            Action::RoleChanged { role, term } => {
                tracing::info!(node = %self.core.id(), %role, %term, "role changed");
                self.members.publish_check_due |= role == RoleKind::Leader;
            }
            Action::LeaderChanged { leader, term } => {
                tracing::info!(node = %self.core.id(), leader = ?leader, %term, "leader changed");
            }
            Action::TransferAborted { to, reason } => {
                tracing::info!(node = %self.core.id(), %to, ?reason, "leadership transfer aborted");
            }
            Action::Ignored(reason) => {
                tracing::trace!(node = %self.core.id(), ?reason, "event ignored")
            }
        }
        Ok(())
    }

    fn on_apply(&mut self, entries: Vec<Entry>) {
        let Some(last) = entries.last() else { return };
        debug_assert!(
            self.applied.index == LogIndex(0) || entries[0].index == self.applied.index.next(),
            "applies are consecutive"
        );
        self.applied.index = last.index;
        if last.term == self.core.term() && self.members.applied_term != last.term {
            self.members.applied_term = last.term;
            self.members.publish_check_due = true;
        }
        let mut peers_changed = false;
        for entry in &entries {
            peers_changed |= self.apply_to_directory(entry);
        }
        if self.applied.batch.is_empty() {
            self.applied.batch = entries;
        } else {
            self.applied.batch.extend(entries);
        }
        if peers_changed {
            self.reconcile_peers();
            self.members.publish_check_due = true;
        }
    }

    /// Hands the batched applies to the application.
    fn deliver_applies(&mut self) {
        if !self.applied.batch.is_empty() {
            let batch = std::mem::take(&mut self.applied.batch);
            self.deliver(Delivery::Entries(batch));
        }
    }

    /// Queues a delivery for the application (see [`Outlet`]).
    fn deliver(&mut self, delivery: Delivery) {
        self.applied.outlet.push(delivery);
    }

    fn leader_hint(&self, leader: Option<NodeId>) -> Option<LeaderHint> {
        leader.map(|id| {
            let addrs = self.members.directory.get(id);
            LeaderHint {
                id,
                addr: addrs.map(|a| a.raft.clone()),
                app_addrs: addrs.map(|a| a.app.clone()).unwrap_or_default(),
            }
        })
    }

    fn append_error(&self, reason: DropReason) -> AppendError {
        let leader = match reason {
            DropReason::NotLeader { leader_hint } => self.leader_hint(leader_hint),
            _ => None,
        };
        AppendError::from_drop(reason, leader)
    }

    fn metrics(&self) -> NodeMetrics {
        let mut metrics = self.metrics.clone();
        metrics.peers = self.io.transport.traffic().clone();
        metrics
    }

    fn status(&self) -> NodeStatus {
        let core = self.core.status();
        NodeStatus {
            id: core.id,
            role: core.role,
            term: core.term,
            leader: self.leader_hint(core.leader),
            commit_index: core.commit_index,
            applied_index: self.applied.index,
            last_index: core.last_index,
            persisted_index: core.persisted_index,
            snapshot_index: core.snapshot_index,
            members: core
                .membership
                .members()
                .into_iter()
                .filter_map(|id| Some((id, self.members.directory.get(id)?.clone())))
                .collect(),
            membership: core.membership,
            applied_membership: self.members.applied_membership.clone(),
            peers: self.io.transport.peer_status(),
            replication: core.peers,
            listen_addr: self.io.listen_addr,
        }
    }
}

/// Binds the peer listener as configured (non-blocking, for mio).
fn bind_listener(config: &RaftConfig) -> Result<mio::net::TcpListener, StartError> {
    let std_listener = match &config.listen {
        Some(Listen::Listener(listener)) => listener
            .try_clone()
            .map_err(|e| StartError::io("clone the listener", "", e))?,
        Some(Listen::Addr(addr)) => {
            std::net::TcpListener::bind(addr).map_err(|e| StartError::io("bind", addr, e))?
        }
        None => {
            let addr = &config.peers[&config.id];
            std::net::TcpListener::bind(addr).map_err(|e| StartError::io("bind", addr, e))?
        }
    };
    std_listener
        .set_nonblocking(true)
        .map_err(|e| StartError::io("set the listener non-blocking", "", e))?;
    Ok(mio::net::TcpListener::from_std(std_listener))
}

/// Starts a node on a thread of its own. Returns the client handle and the stream of
/// committed commands.
pub fn run<T: Serialize + DeserializeOwned>(
    config: RaftConfig,
) -> Result<(Client<T>, CommittedStream<T>), StartError> {
    let name = format!("raft-node-{}", config.id.0);
    let (node, client, committed) = NodeLoop::new::<T>(config)?;
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            // The loop logs why it stopped; clients then see `Shutdown`.
            let _ = node.run();
        })
        .map_err(|e| StartError::io("spawn the loop thread", "", e))?;
    client.set_thread(thread);
    Ok((client, committed))
}
