//! Linearizability checking of a concurrent history: the Wing & Gong search with
//! Lowe's memoization (as in Porcupine), generic over a sequential [`Model`], plus the
//! key-value model of `kv-model` partitioned per key ([`kv`]).
//!
//! A history is a set of [`Operation`]s with the logical time each was invoked and,
//! if the client heard back, the time it returned and its output. An operation whose
//! outcome is unknown (the client timed out) may have taken effect at any point after
//! its invocation, or never: it has no return time and no output, and the search may
//! leave it out. Operations that definitely failed belong in no history.
//!
//! This module is public and self-contained so that kv-example's tests check their
//! real-cluster histories with the same search.

pub mod kv;
mod search;

pub use search::{check_operations, CheckOutcome, Model, Operation};
