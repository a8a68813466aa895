//! raft-mio
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod storage;
pub mod transport;
