//! # raft-mio
//!
//! A production shell for [`raft_core`]: one thread per node runs a `mio` event loop
//! over TCP connections to its peers, a durable segmented log, and a client handle.
//!
//! ```no_run
//! use raft_core::NodeId;
//! use raft_mio::{AppendError, Committed, RaftConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let peers = [(NodeId(1), "10.0.0.1:7000"), (NodeId(2), "node2:7000"), (NodeId(3), "node3:7000")];
//! let config = RaftConfig::new(NodeId(1), peers).data_dir("data/node1");
//! let (client, mut committed) = raft_mio::run::<String>(config)?;
//! match client.append_cmd("hello".to_string()) {
//!     Ok(index) => println!("committed at {index}"),
//!     Err(AppendError::NotLeader(hint)) => println!("ask the leader: {hint:?}"),
//!     Err(e) => return Err(e.into()),
//! }
//! if let Committed::Command { index, command, .. } = committed.recv()? {
//!     println!("{index}: {command}");
//! }
//! let barrier = client.read_index()?; // read once `committed.last_index() >= barrier`
//! println!("{:?} {barrier}", client.status()?);
//! client.shutdown();
//! # Ok(()) }
//! ```
//!
//! ## What the loop guarantees
//! - Nothing is sent that depends on state not yet durable: the loop writes the
//!   persistence its steps produce, runs `fdatasync` on its fsync threads (group
//!   commit: one sync covers every write made before it started), reports
//!   `Persisted` to the core, and only the core releases the messages that waited for
//!   it (thesis §3.8). A leader's new entries go to its followers while its own sync
//!   runs (thesis §10.2.1).
//! - Committed entries reach the [`CommittedStream`] in index order, each once per
//!   process lifetime (after a restart, from the snapshot on or from index 1).
//! - A proposal's outcome is reported exactly once, and is true in every schedule:
//!   its index once it commits; "not applied" only when it never entered a log that
//!   could commit it, or its index committed with another entry
//!   ([`AppendError::NotLeader`], which carries the leader's id, raft address and
//!   application addresses; `Dropped`, `TooLarge`, `Encode`, `Shutdown`); otherwise
//!   "fate unknown" ([`AppendError::Unknown`]): the node stopped while it was
//!   pending, or a snapshot replaced the log before the node could tell. A node that
//!   steps down keeps its proposals pending: they may still commit through another
//!   leader, and the core reports their fate once their index commits. An
//!   application that tells its own clients "not applied" only for the not-applied
//!   errors, and "unknown, retry under the same request id" otherwise, never makes
//!   a client apply a write twice.
//! - Storage faults are fail-stop: a failed write or `fdatasync` (a full disk, a
//!   disk error) stops the loop at once, the sync is never retried (after a failed
//!   `fdatasync` the kernel may have dropped the unsynced pages, so a retry could
//!   report success for lost data), and [`Client::wait_stopped`] says why, so that
//!   the process can exit and be restarted: it then recovers from what was durable.
//!   [`storage::faults`] makes those faults happen in tests.
//! - Sizes are bounded end to end: a command over `command_bytes_max` is refused
//!   ([`AppendError::TooLarge`]) before it reaches the log, and
//!   [`RaftConfig::validate`] checks that no message the core can build from such
//!   commands outgrows a frame, nor any entry a log record ([`bounds`] has the
//!   reasoning); a snapshot travels in chunks of `snapshot_chunk_bytes`.
//! - The loop never blocks on a socket, on name resolution, or on a slow application
//!   (up to `committed_backlog_entries_max` entries wait inside the loop), so
//!   heartbeats and votes keep flowing; every queue and buffer has a bound.
//!
//! ## Metrics
//! [`Client::metrics`] returns what the node counted ([`NodeMetrics`]): proposals
//! committed and dropped by reason, reads, elections started and won, step-downs,
//! snapshots installed and written, a latency histogram of the group-commit
//! `fdatasync`s, and messages and bytes sent to and received from each peer. It
//! exports nothing itself; kv-example serves them as Prometheus text.
//!
//! ## A lost quorum
//! When a majority is gone for good, [`recover::force_new_membership`] makes one
//! stopped survivor the founder of a new cluster from its own data: it costs
//! safety (committed writes the survivor lacked are lost; entries it holds that
//! never committed now commit), and the module says exactly how much.
//!
//! ## Snapshots
//! The application hands raft-mio its state with [`Client::compact`] (as of an index
//! it has applied); the snapshot file is written atomically with a checksum, log
//! segments wholly before it are deleted, and a restart begins with a
//! [`Committed::Restore`] of it, then the log after it. A follower behind the
//! leader's compacted log receives the snapshot (InstallSnapshot, in chunks) and its
//! stream yields a `Restore` too. raft-mio stores its address table (below) next to
//! the application's bytes; the application only ever sees its own.
//!
//! ## Membership changes and addresses
//! Nodes join and leave at runtime (joint consensus for voters, learners in between,
//! all in the core). The shell's part is that every member can reach every other:
//! each member's raft address and the application's own addresses for it
//! ([`MemberAddrs`], for example its client port) are replicated through the log in
//! *address records* that the leader proposes right before each configuration
//! change, and carried by snapshots; see [`members`]. So a node added at runtime is
//! reachable by every member, and one that restarts or joins later learns addresses
//! no configuration gave it. When a removal commits, the members close their
//! connections to the removed node and refuse it at the handshake: a removed node
//! that comes back with its old log cannot disturb the cluster.
//!
//! ```no_run
//! use raft_core::{MembershipChange, NodeId};
//! use raft_mio::{Client, MemberAddrs, RaftConfig};
//!
//! # fn add(leader: &Client<String>) -> Result<(), Box<dyn std::error::Error>> {
//! // On the new machine: node 4 knows the current members and waits to be added.
//! let members = [(NodeId(1), "node1:7000"), (NodeId(2), "node2:7000"), (NodeId(4), "node4:7000")];
//! let config = RaftConfig::new(NodeId(4), members).join_existing();
//! # let _ = config;
//! // On the leader: add it as a learner with its addresses; once the leader's
//! // `status().replication[&NodeId(4)].match_index` has caught up, promote it.
//! let addrs = MemberAddrs::new("node4:7000").with("client", "node4:8000");
//! leader.change_membership(vec![MembershipChange::AddLearner(NodeId(4))], [(NodeId(4), addrs)])?;
//! leader.change_membership(vec![MembershipChange::AddVoter(NodeId(4))], [])?;
//! // The leader leaves the joint configuration by itself; the change is done once
//! // `status().applied_membership` shows it.
//! # Ok(()) }
//! ```
//!
//! A voter that lost its disk must not simply restart under its old id: it has
//! forgotten its vote and could vote twice in one term. Remove it, wipe it, start it
//! with [`RaftConfig::join_existing`], and add it again as a learner, then a voter;
//! it catches up from the leader's snapshot.
//!
//! ## Threads of a node
//! The loop (`raft-node-N`), its fsync threads (`raft-fsync-N-i`, blocked in
//! `fdatasync` or idle), and short-lived resolver threads for peers named by host.
//!
//! ## Modules
//! [`storage`] (segments, hard state, snapshots, lock, recovery, fault injection),
//! [`transport`] (frames, handshake, mutual TLS, silent-peer detection, backoff,
//! write queues), [`members`] (the
//! replicated address table), [`envelope`] (how entries and snapshots carry raft-mio's
//! own data next to the application's), [`bounds`] (frame and record sizes), [`clock`] (the
//! only wall-clock code), [`client`] and [`committed`] (the application's side),
//! [`exit`] (why a loop stopped), [`metrics`], [`recover`], and the loop itself
//! ([`NodeLoop`]) for users who drive it on their own thread.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bounds;
pub mod client;
mod client_error;
pub mod clock;
pub mod committed;
pub mod config;
mod encoding;
pub mod envelope;
pub mod error;
pub mod exit;
mod fsync_thread;
pub mod members;
pub mod metrics;
mod node;
mod outlet;
pub mod recover;
mod reply;
pub mod storage;
pub mod transport;

pub use client::{
    AppendError, Client, LeaderHint, NodeStatus, Proposal, ReadError, ShutdownError, UnknownFate,
};
pub use committed::{Committed, CommittedStream};
pub use config::{ConfigError, Listen, RaftConfig};
pub use error::{LoopError, StartError};
pub use exit::StopReason;
pub use members::{AddrTable, MemberAddrs};
pub use metrics::{LatencyHistogram, NodeMetrics, PeerTraffic};
pub use node::{run, Flow, NodeLoop};
pub use transport::PeerConnection;
