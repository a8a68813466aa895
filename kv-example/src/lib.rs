//! # kv-example
//!
//! A replicated key-value store on [`raft_mio`], with the state machine of
//! [`kv_model`]. `cargo run -p kv-example` starts three nodes as three processes on
//! this machine; each serves a line protocol for `nc` and HTTP for `curl`.
//!
//! ## How a node is put together
//! ```text
//!  nc ──> text front end ─┐                        ┌─> raft-mio loop thread (TCP to peers, WAL)
//!                         ├─> KvService (Backend) ─┤
//!  curl ─> HTTP front end ┘     │                  └─< committed stream
//!                               └── waits on ── Replica <── applier thread
//! ```
//! - A write is proposed through the raft-mio [`Client`](raft_mio::Client) under the
//!   connection's session (client id and sequence number, so a retry is applied
//!   once) and answered once it is committed *and* applied here.
//! - A read asks for a ReadIndex barrier (on a follower, the core asks the leader)
//!   and answers once the replica has applied through it: linearizable on any node.
//!   `get --stale` skips the barrier.
//! - The HTTP front end is one event loop for every connection: writes and read
//!   barriers go to raft-mio with callbacks and come back through a [`ticket`], and
//!   the reads of one turn share one barrier ([`http::server`] says how). The text
//!   front end runs a thread per connection ([`server`] says why).
//!
//! ## Modules
//! [`cli`] (flags and environment), [`node`] (one node process), [`cluster`] (the
//! local cluster of processes, its console), [`process`] and [`layout`] (starting
//! node processes), [`api`] (what front ends ask of a node), [`service`] (that, over
//! Raft), [`membership`] (adding and removing nodes), [`leadership`] (handing it
//! to another voter), [`replica`] (the applied
//! store), [`protocol`], [`line`](mod@line) and [`text`] (the line protocol), [`http`],
//! [`client`] (a blocking line-protocol client), [`bench`](mod@bench), [`addrs`] (who is where),
//! [`ticket`] (answers for the event loop).
//!
//! ## Membership
//! Nodes are added and removed at runtime (`add-node`, `remove-node` on the text
//! protocol and the console, `POST`/`DELETE /cluster/nodes` over HTTP): a new node
//! starts with `--join`, is added as a learner, catches up (through a snapshot if the
//! leader's log is compacted), and is promoted to voter. Every member's raft, text
//! and HTTP addresses travel through raft-mio's replicated address table, so any
//! node can name the leader's client address, or redirect to its HTTP address,
//! whichever nodes joined since it was configured.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addrs;
pub mod api;
pub mod bench;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod console;
pub mod drain;
#[cfg(test)]
mod fake;
pub mod http;
pub mod layout;
pub mod leadership;
pub mod line;
pub mod membership;
pub mod metrics;
pub mod node;
pub mod process;
pub mod protocol;
pub mod recover;
pub mod replica;
pub mod server;
pub mod service;
pub mod text;
pub mod ticket;
pub mod tls;
