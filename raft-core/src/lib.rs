//! # raft-core
//!
//! A pure, deterministic Raft state machine. No I/O, no clocks, no threads: a shell
//! feeds [`Event`]s into [`RaftNode::step`] and carries out the [`Action`]s it returns.
//!
//! ## The driving contract
//! 1. Build the node with [`RaftNode::new`] from a [`Config`] and what the shell
//!    restored from durable storage ([`Restored`]; default for a fresh node).
//! 2. Feed events: [`Event::Tick`] at a fixed interval, every message from a peer,
//!    the application's proposals and reads, and [`Event::Persisted`] when writes are
//!    durable.
//! 3. Carry out the returned actions in order:
//!    - `PersistHardState`, `AppendToLog`, `PersistSnapshot` are numbered. Make them
//!      durable in order (batching many into one fsync is encouraged), then step
//!      `Event::Persisted { through }` with the highest number done.
//!    - `Send` may go out at once: the core holds back every message that depends on
//!      durable state until the `Persisted` event that covers it (thesis §3.8).
//!    - `Apply`, `RestoreSnapshot`, `ReadReady` go to the application in order.
//!
//! Same configuration, same events in the same order: same actions, byte for byte.
//!
//! ## Where things live
//! - The interface: `event.rs`, `action.rs`, `message.rs`, `types.rs`, `config.rs`.
//! - `node.rs`: [`RaftNode::step`], the term prelude (written once for every
//!   message), role transitions and the invariants checked after every step;
//!   `status.rs`: the read-only accessors.
//! - `role/`: each role's private state (`FollowerState`, `CandidateState`,
//!   `LeaderState`) and its core duties; `shared.rs`: what every role shares.
//! - One file per Raft rule, each with its own `impl LeaderState` and follower
//!   blocks: `election.rs` (campaigns, PreVote, votes), `replication.rs`,
//!   `read_index.rs`, `transfer.rs`, `membership.rs`, `snapshot/`.
//! - Mechanisms: `outbox.rs` (the persistence contract: the only way out for
//!   messages and writes), `log.rs`, `progress.rs`, `quorum.rs`, `proposals.rs`,
//!   `timer.rs`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod action;
mod config;
mod election;
mod event;
mod log;
mod membership;
mod message;
mod node;
mod outbox;
mod progress;
mod proposals;
mod quorum;
mod read_index;
mod replication;
mod role;
mod shared;
mod snapshot;
mod status;
mod timer;
mod transfer;
mod types;

pub use action::{Action, DropReason, IgnoreReason, TransferFailure};
pub use config::{Config, ConfigError, NewNodeError, RestoreError, Restored};
pub use event::{Event, MembershipChange, Proposal};
pub use message::{AppendOutcome, Message, MessageBody, ReadFailure, SnapshotChunk};
pub use node::RaftNode;
pub use progress::ProgressState;
pub use status::{PeerStatus, Status};
pub use types::{
    Entry, EntryPayload, HardState, LogIndex, Membership, NodeId, PersistSeq, ProposalId, ReadId,
    RoleKind, SharedBytes, Snapshot, SnapshotMeta, Term,
};

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
