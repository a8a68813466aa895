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
//!    last sync started, start one `fdatasync` covering everything written so far. The loop keeps turning meanwhile
//!    (reading acknowledgements, taking proposals, writing the next batch); when the
//!    sync reports, one `Event::Persisted` is stepped and the actions it releases
//!    (vote grants, append acknowledgements: thesis §3.8) are carried out like the
//!    rest.
//! 6. Hand the applied entries to the committed stream, answer clients, flush again.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Waker};
use raft_core::{
    Action, DropReason, Entry, Event, LogIndex, Membership, Message, NodeId, Proposal, ProposalId,
    RaftNode, ReadId, RoleKind, Term,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::{
    AppendError, Client, Inbox, LeaderHint, Mailbox, NodeStatus, ReadError, Request,
};
use crate::client_error::UnknownFate;
use crate::clock::{self, Ticker};
use crate::committed::{CommittedStream, Delivery};
use crate::config::{Listen, RaftConfig};
use crate::envelope::wrap_snapshot;
use crate::error::{LoopError, StartError};
use crate::exit::{LoopExit, StopReason};
use crate::fsync_thread::FsyncThreads;
use crate::members::Directory;
use crate::metrics::NodeMetrics;
use crate::outlet::Outlet;
use crate::reply::Reply;
use crate::storage::{Storage, SyncStart};

mod bootstrap;
mod peers;
use crate::transport::{Transport, WAKER_TOKEN};

/// Readiness events taken from one poll.
const EVENTS_PER_POLL_MAX: usize = 1024;

/// Rounds of `Persisted` per turn: the actions released by one report may hold new
/// persistence (rarely); more than this waits for the next turn.
const PERSIST_ROUNDS_PER_TURN_MAX: usize = 4;

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
    storage: Storage,
    fsync: FsyncThreads,
    transport: Transport,
    poll: Poll,
    events: Events,
    ticker: Ticker,
    inbox: Inbox,
    /// The committed stream's sending end.
    outlet: Outlet,
    /// The reused action buffer of `step_into`.
    actions: Vec<Action>,
    incoming: Vec<Message>,
    proposals: Vec<Proposal>,
    /// Loop-generated events (reads, transfers...) in arrival order.
    other_events: Vec<Event>,
    pending_proposals: HashMap<ProposalId, Reply<Result<LogIndex, AppendError>>>,
    pending_reads: HashMap<ReadId, Reply<Result<LogIndex, ReadError>>>,
    next_proposal_id: u64,
    next_read_id: u64,
    apply_batch: Vec<Entry>,
    applied_index: LogIndex,
    /// The configuration of the newest membership entry applied (or of the snapshot).
    applied_membership: Membership,
    /// The newest term this node has applied an entry of: once a leader has applied
    /// one of its own, its address table reflects every record committed before it.
    applied_term: Term,
    /// Where the members are (see [`crate::members`]).
    directory: Directory,
    /// Address records this node proposed whose fate is not known yet.
    records_in_flight: BTreeSet<ProposalId>,
    /// Membership changes proposed here whose fate is not known yet.
    changes_in_flight: BTreeSet<ProposalId>,
    /// Whether a leader should check that the address table covers every member.
    publish_check_due: bool,
    listen_addr: SocketAddr,
    proposal_batch_max: usize,
    requests_per_turn_max: usize,
    /// Requests may be left in the queue (the drain stopped at its bound).
    requests_left: bool,
    /// Campaign once connected to a majority (a new cluster's preferred leader).
    bootstrap_campaign_armed: bool,
    shutting_down: bool,
    /// The largest command (and address record) proposed.
    command_bytes_max: usize,
    /// What the loop counted, for [`Client::metrics`].
    metrics: NodeMetrics,
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
        let bootstrap_campaign_armed =
            config.campaign_at_bootstrap && bootstrap::is_fresh(&restored);
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
        let mut node = NodeLoop {
            core,
            storage,
            fsync,
            transport,
            poll,
            events: Events::with_capacity(EVENTS_PER_POLL_MAX),
            ticker: Ticker::new(config.tick_interval, now),
            inbox: Inbox {
                rx,
                wake_pending: Arc::clone(&wake_pending),
            },
            outlet: Outlet::new(committed_tx, config.committed_backlog_entries_max),
            actions: Vec::new(),
            incoming: Vec::new(),
            proposals: Vec::new(),
            other_events: Vec::new(),
            pending_proposals: HashMap::new(),
            pending_reads: HashMap::new(),
            next_proposal_id: 1,
            next_read_id: 1,
            apply_batch: Vec::new(),
            applied_index,
            applied_membership,
            applied_term: Term(0),
            directory,
            records_in_flight: BTreeSet::new(),
            changes_in_flight: BTreeSet::new(),
            publish_check_due: false,
            listen_addr,
            proposal_batch_max: config.proposal_batch_max,
            requests_per_turn_max: config.client_queue_max,
            requests_left: false,
            bootstrap_campaign_armed,
            shutting_down: false,
            command_bytes_max: config.command_bytes_max,
            metrics: NodeMetrics::default(),
            exit: Arc::new(LoopExit::default()),
        };
        // The log may have added members the configuration does not name, or removed
        // some it does.
        node.reconcile_peers();
        let client = Client::new(
            Mailbox::new(tx, waker, wake_pending),
            listen_addr,
            Arc::clone(&node.exit),
            config.command_bytes_max,
        );
        Ok((node, client, CommittedStream::new(committed_rx)))
    }

    /// The address the node listens on.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
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
                self.exit.record(StopReason::Requested);
                Ok(Flow::Stop)
            }
            Ok(Flow::Continue) => Ok(Flow::Continue),
            Err(e) => {
                tracing::error!(node = %self.core.id(), "raft node stopping: {e}");
                let e = Arc::new(e);
                self.exit.record(StopReason::Failed(Arc::clone(&e)));
                Err(e)
            }
        }
    }

    fn turn_once(&mut self) -> Result<Flow, LoopError> {
        debug_assert!(!self.exit.is_recorded(), "a stopped loop turned again");
        self.wait_for_events()?;
        let now = clock::now();
        self.gather(now);
        self.take_finished_sync()?;
        self.maybe_campaign_at_bootstrap();
        self.step_gathered(now);
        self.execute_actions()?;
        self.maybe_publish_addrs();
        // The leader's entries go out while it syncs its own copy.
        self.transport.flush(self.poll.registry(), now);
        self.group_commit()?;
        self.deliver_applies();
        self.outlet.flush();
        self.transport.flush(self.poll.registry(), now);
        if self.shutting_down {
            self.finish_for_shutdown()?;
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }

    fn wait_for_events(&mut self) -> Result<(), LoopError> {
        let now = clock::now();
        let busy = self.requests_left
            || self.transport.has_pending_reads()
            || self.shutting_down
            || !self.other_events.is_empty();
        let timeout = if busy {
            Duration::ZERO
        } else {
            let deadline = self
                .transport
                .next_deadline()
                .map_or(self.ticker.next_deadline(), |d| {
                    d.min(self.ticker.next_deadline())
                });
            clock::time_until(deadline, now)
        };
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                self.events.clear();
                Ok(())
            }
            Err(e) => Err(LoopError::Poll(e)),
        }
    }

    fn gather(&mut self, now: Instant) {
        let registry = self.poll.registry();
        let mut woken = false;
        for event in self.events.iter() {
            if event.token() == WAKER_TOKEN {
                woken = true;
            } else {
                self.transport
                    .on_event(registry, event.token(), now, &mut self.incoming);
            }
        }
        self.transport.read_pending(registry, &mut self.incoming);
        if woken {
            self.transport.on_resolved(registry, now);
        }
        self.transport.on_timers(registry, now);
        self.drain_requests(now);
    }

    fn drain_requests(&mut self, now: Instant) {
        // Clear the flag before draining: a request sent after the drain rings again.
        self.inbox.wake_pending.store(false, Ordering::Release);
        self.requests_left = false;
        for _ in 0..self.requests_per_turn_max {
            let Ok(request) = self.inbox.rx.try_recv() else {
                return;
            };
            self.on_request(request, now);
        }
        self.requests_left = true;
    }

    fn on_request(&mut self, request: Request, now: Instant) {
        match request {
            Request::Propose { command, reply } => {
                let id = self.next_proposal();
                self.pending_proposals.insert(id, reply);
                self.proposals.push(Proposal { id, command });
            }
            Request::Read { reply } => {
                let id = ReadId(self.next_read_id);
                self.next_read_id += 1;
                self.pending_reads.insert(id, reply);
                self.other_events.push(Event::Read { id });
            }
            Request::Status { reply } => reply.send(self.status()),
            Request::Metrics { reply } => reply.send(self.metrics()),
            Request::TransferLeadership { to } => {
                self.other_events.push(Event::TransferLeadership { to })
            }
            Request::ChangeMembership {
                changes,
                addrs,
                reply,
            } => self.on_change_membership(changes, addrs, reply, now),
            Request::PublishAddrs { addrs, reply } => {
                for (id, member) in &addrs {
                    self.directory.stage(*id, member.clone());
                }
                match self.propose_record(addrs) {
                    Ok(id) => {
                        self.pending_proposals.insert(id, reply);
                    }
                    Err(e) => reply.send(Err(e)),
                }
            }
            Request::Compact { up_to, data } => {
                // The snapshot carries the address table as it was at `up_to`.
                let data = wrap_snapshot(self.directory.at(up_to), &data);
                self.other_events.push(Event::Compact { up_to, data })
            }
            Request::Shutdown => self.shutting_down = true,
        }
    }

    fn next_proposal(&mut self) -> ProposalId {
        let id = ProposalId(self.next_proposal_id);
        self.next_proposal_id += 1;
        id
    }

    /// Steps everything gathered into the core; actions pile up in `self.actions`.
    fn step_gathered(&mut self, now: Instant) {
        for message in self.incoming.drain(..) {
            self.core
                .step_into(Event::Message(message), &mut self.actions);
        }
        while !self.proposals.is_empty() {
            let rest = self
                .proposals
                .split_off(self.proposals.len().min(self.proposal_batch_max));
            let batch = std::mem::replace(&mut self.proposals, rest);
            self.core
                .step_into(Event::Propose(batch), &mut self.actions);
        }
        for event in self.other_events.drain(..) {
            self.core.step_into(event, &mut self.actions);
        }
        for _ in 0..self.ticker.due_ticks(now) {
            self.core.step_into(Event::Tick, &mut self.actions);
        }
    }

    /// Steps `Persisted` for a sync the fsync thread finished.
    fn take_finished_sync(&mut self) -> Result<(), LoopError> {
        while let Some((result, latency)) = self.fsync.try_done() {
            self.metrics.fsync_latency.observe(latency);
            let synced = result.map_err(LoopError::Storage)?;
            if let Some(through) = self.storage.end_sync(synced) {
                self.other_events.push(Event::Persisted { through });
            }
        }
        Ok(())
    }

    /// Starts the next group commit if none is running. Writes that are durable at
    /// once (fsync off, or hard state written synchronously) are reported at once.
    fn group_commit(&mut self) -> Result<(), LoopError> {
        for _ in 0..PERSIST_ROUNDS_PER_TURN_MAX {
            if self.fsync.is_full() {
                return Ok(());
            }
            match self.storage.begin_sync().map_err(LoopError::Storage)? {
                SyncStart::Nothing => return Ok(()),
                SyncStart::Job(job) => {
                    self.fsync.submit(job).map_err(LoopError::Storage)?;
                    return Ok(());
                }
                SyncStart::Durable(through) => {
                    self.core
                        .step_into(Event::Persisted { through }, &mut self.actions);
                    self.execute_actions()?;
                }
            }
        }
        Ok(())
    }

    /// Finishes the outstanding sync and makes everything written durable before the
    /// loop stops (a clean shutdown loses nothing it wrote).
    fn finish_for_shutdown(&mut self) -> Result<(), LoopError> {
        self.fsync.wait_all().map_err(LoopError::Storage)?;
        self.storage.sync().map_err(LoopError::Storage)?;
        Ok(())
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
                self.storage.write(&action).map_err(LoopError::Storage)?;
            }
            Action::PersistSnapshot { ref snapshot, .. } => {
                self.directory.compact(snapshot.meta.last_index);
                self.storage.write(&action).map_err(LoopError::Storage)?;
            }
            Action::Send(message) => self.transport.send(&message),
            Action::Apply(entries) => self.on_apply(entries),
            Action::RestoreSnapshot(snapshot) => self.on_restore(*snapshot)?,
            Action::ReadReady { id, read_index } => {
                // The application must see the applies this read depends on first.
                self.deliver_applies();
                if let Some(reply) = self.pending_reads.remove(&id) {
                    reply.send(Ok(read_index));
                }
            }
            Action::ReadFailed { id, reason } => {
                if let Some(reply) = self.pending_reads.remove(&id) {
                    reply.send(Err(ReadError::Failed(reason)));
                }
            }
            Action::ProposalAccepted { .. } => {}
            Action::ProposalCommitted { id, index } => {
                self.deliver_applies();
                self.forget_proposal(id);
                if let Some(reply) = self.pending_proposals.remove(&id) {
                    reply.send(Ok(index));
                }
            }
            Action::ProposalDropped { id, reason } => {
                if self.forget_proposal(id) {
                    // A refused change leaves no member behind: the nodes it would
                    // have added are no longer dialed.
                    self.reconcile_peers();
                }
                if let Some(reply) = self.pending_proposals.remove(&id) {
                    reply.send(Err(self.append_error(reason)));
                }
            }
            Action::RoleChanged { role, term } => {
                tracing::info!(node = %self.core.id(), %role, %term, "role changed");
                self.publish_check_due |= role == RoleKind::Leader;
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
            self.applied_index == LogIndex(0) || entries[0].index == self.applied_index.next(),
            "applies are consecutive"
        );
        self.applied_index = last.index;
        if last.term == self.core.term() && self.applied_term != last.term {
            self.applied_term = last.term;
            self.publish_check_due = true;
        }
        let mut peers_changed = false;
        for entry in &entries {
            peers_changed |= self.apply_to_directory(entry);
        }
        if self.apply_batch.is_empty() {
            self.apply_batch = entries;
        } else {
            self.apply_batch.extend(entries);
        }
        if peers_changed {
            self.reconcile_peers();
            self.publish_check_due = true;
        }
    }

    /// Hands the batched applies to the application.
    fn deliver_applies(&mut self) {
        if !self.apply_batch.is_empty() {
            let batch = std::mem::take(&mut self.apply_batch);
            self.deliver(Delivery::Entries(batch));
        }
    }

    /// Queues a delivery for the application (see [`Outlet`]).
    fn deliver(&mut self, delivery: Delivery) {
        self.outlet.push(delivery);
    }

    fn leader_hint(&self, leader: Option<NodeId>) -> Option<LeaderHint> {
        leader.map(|id| {
            let addrs = self.directory.get(id);
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
        metrics.peers = self.transport.traffic().clone();
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
            applied_index: self.applied_index,
            last_index: core.last_index,
            persisted_index: core.persisted_index,
            snapshot_index: core.snapshot_index,
            members: core
                .membership
                .members()
                .into_iter()
                .filter_map(|id| Some((id, self.directory.get(id)?.clone())))
                .collect(),
            membership: core.membership,
            applied_membership: self.applied_membership.clone(),
            peers: self.transport.peer_status(),
            replication: core.peers,
            listen_addr: self.listen_addr,
        }
    }
}

impl Drop for NodeLoop {
    /// Answers every proposal the loop took: one never stepped into the core was not
    /// proposed (`Shutdown`); one that was may be in other nodes' logs and commit
    /// there, so its fate is unknown. (Never "not applied" for those: that answer
    /// would make a client that retries without a request id apply it twice.)
    fn drop(&mut self) {
        self.exit.record(StopReason::Requested);
        let mut unstepped: BTreeSet<ProposalId> = self.proposals.iter().map(|p| p.id).collect();
        for event in &self.other_events {
            match event {
                Event::Propose(proposals) => unstepped.extend(proposals.iter().map(|p| p.id)),
                Event::ChangeMembership { id, .. } => {
                    unstepped.insert(*id);
                }
                _ => {}
            }
        }
        for (id, reply) in self.pending_proposals.drain() {
            let answer = if unstepped.contains(&id) {
                AppendError::Shutdown
            } else {
                AppendError::Unknown(UnknownFate::NodeStopped)
            };
            reply.send(Err(answer));
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
