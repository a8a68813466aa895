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
//! - A proposal's outcome is reported exactly once: its index, or why it was dropped
//!   ([`AppendError::NotLeader`] carries the leader's id and address).
//! - The loop never blocks on a socket, on name resolution, or on a slow application
//!   (up to `committed_backlog_entries_max` entries wait inside the loop), so
//!   heartbeats and votes keep flowing; every queue and buffer has a bound.
//!
//! ## Threads of a node
//! The loop (`raft-node-N`), its fsync threads (`raft-fsync-N-i`, blocked in
//! `fdatasync` or idle), and short-lived resolver threads for peers named by host.

//! ## Modules
//! [`storage`] (segments, hard state, snapshots, lock, recovery), [`transport`]
//! (frames, handshake, backoff, write queues), [`clock`] (the only wall-clock code),
//! [`client`] and [`committed`] (the application's side), and the loop itself
//! ([`NodeLoop`]) for users who drive it on their own thread.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod clock;
pub mod committed;
pub mod config;
pub mod error;
mod fsync_thread;
pub mod members;
mod node;
mod outlet;
mod reply;
pub mod storage;
pub mod transport;

pub use client::{AppendError, Client, LeaderHint, NodeStatus, Proposal, ReadError, ShutdownError};
pub use committed::{Committed, CommittedStream};
pub use config::{ConfigError, Listen, RaftConfig};
pub use error::{LoopError, StartError};
pub use members::{AddrTable, MemberAddrs};
pub use node::{run, Flow, NodeLoop};
pub use transport::PeerConnection;
