//! raft-sim (being built)
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checkers;
pub mod client;
pub mod coverage;
pub mod digest;
pub mod disk;
pub mod faults;
pub mod history;
pub mod linearizability;
pub mod network;
pub mod params;
pub mod rng;
pub mod scheduler;
pub mod time;
pub mod timeline;
