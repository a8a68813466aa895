//! # raft-sim
//!
//! A deterministic discrete-event simulator that runs a cluster of real `raft-core`
//! nodes in virtual time, injects faults drawn from one seed (message delay, loss,
//! duplication and reordering; partitions; crashes that lose unsynced writes; clock
//! drift), drives a KV workload from concurrent clients, and checks what Raft
//! promises: the safety properties after every event, linearizability of the client
//! history at the end, and liveness once the faults stop.
//!
//! The same seed replays the same run, event for event; the report's last line is a
//! digest of the whole trace.
//!
//! Entry points: [`params::SimParams::draw`] picks a world for a seed,
//! [`run::run`] simulates and checks it, [`sweep::sweep`] runs many seeds on several
//! threads. The linearizability checker ([`linearizability`]) is public for reuse.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod chaos;
pub mod checkers;
pub mod client;
pub mod coverage;
mod delivery;
pub mod digest;
pub mod disk;
pub mod efficiency;
mod env;
mod exec;
pub mod faults;
pub mod history;
pub mod host;
mod hosts;
pub mod linearizability;
pub mod network;
pub mod params;
mod reconfig;
pub mod rng;
pub mod run;
pub mod scheduler;
pub mod sweep;
pub mod time;
pub mod timeline;
pub mod trace;
pub mod world;
