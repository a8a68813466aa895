//! # kv-model
//!
//! The key-value state machine replicated by raftrs: the commands clients put in the
//! log ([`Command`]: put, delete, compare-and-set under a client session) and the
//! store that applies them ([`KvStore`]). `raft-sim` drives it in its workload and
//! `kv-example` serves it over the network; both share this one implementation.
//!
//! Duplicate suppression: each command names its client and the client's sequence
//! number. A store applies a request once; a retry of the client's latest request
//! returns the first outcome, and an older one is answered [`Outcome::Stale`] without
//! effect. A client therefore has at most one request outstanding at a time.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod command;
mod store;

pub use command::{ClientId, Command, DecodeError, Operation, RequestSeq};
pub use store::{KvStore, Outcome, SESSIONS_MAX};
