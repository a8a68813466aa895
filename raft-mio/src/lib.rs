//! raft-mio
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod clock;
pub mod committed;
pub mod config;
mod reply;
pub mod storage;
pub mod transport;
