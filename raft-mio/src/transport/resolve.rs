//! Name resolution off the event loop: `getaddrinfo` blocks (for seconds, with a slow
//! DNS server), so a peer named by host name is resolved on a short-lived thread whose
//! answer comes back through a channel and the loop's waker.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use mio::Waker;
use raft_core::NodeId;

/// An answer: the peer, the name asked, and its addresses (or why there are none).
pub type Resolved = (NodeId, String, Result<Vec<SocketAddr>, String>);

/// Resolves `host:port` names in the background; one request per peer at a time (the
/// caller tracks that), so the threads are bounded by the number of peers.
#[derive(Debug)]
pub struct Resolver {
    tx: Sender<Resolved>,
    rx: Receiver<Resolved>,
    waker: Arc<Waker>,
}

impl Resolver {
    /// A resolver that wakes the loop through `waker` when an answer is ready.
    pub fn new(waker: Arc<Waker>) -> Self {
        let (tx, rx) = channel();
        Resolver { tx, rx, waker }
    }

    /// The address at once if `addr` is a literal IP address and port.
    pub fn parse_literal(addr: &str) -> Option<SocketAddr> {
        addr.parse().ok()
    }

    /// Starts resolving `addr` for `peer`.
    pub fn request(&self, peer: NodeId, addr: &str) {
        let tx = self.tx.clone();
        let waker = Arc::clone(&self.waker);
        let addr = addr.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("raft-resolve-{peer}"))
            .spawn(move || {
                let answer = addr
                    .to_socket_addrs()
                    .map(|a| a.collect())
                    .map_err(|e| e.to_string());
                // The loop may be gone (shut down); then nobody needs the answer.
                if tx.send((peer, addr, answer)).is_ok() {
                    let _ = waker.wake();
                }
            });
        if let Err(e) = spawned {
            let _ = self.tx.send((
                peer,
                String::new(),
                Err(format!("cannot start a resolver thread: {e}")),
            ));
        }
    }

    /// The next answer, if one is ready.
    pub fn try_next(&self) -> Option<Resolved> {
        self.rx.try_recv().ok()
    }
}
