//! The TCP transport between nodes: frames, handshake, reconnection, write queues.

pub mod backoff;
pub mod frame;
pub mod handshake;
pub mod write_queue;
