//! An inbound connection: a peer dialed this node to send it messages. It must
//! introduce itself (cluster, version, node id) before a single frame is read.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::Token;
use raft_core::{Message, NodeId};

use super::frame::{FrameError, FrameReader};
use super::handshake::{HandshakeError, Hello, HELLO_BYTES};
use super::outbound::{read_some, write_some, CloseReason};
use super::stream::PeerStream;

/// Reads per readiness event before yielding to other connections; the rest is read
/// in the next loop iteration (the token stays on the loop's pending list).
const READS_PER_TURN_MAX: usize = 16;

/// An accepted connection.
#[derive(Debug)]
pub struct Inbound {
    /// The socket (TLS over it, if configured).
    pub stream: PeerStream,
    /// Its poll token.
    pub token: Token,
    /// The remote address (for log lines).
    pub remote: SocketAddr,
    /// The peer, once its hello checked out.
    pub peer: Option<NodeId>,
    /// The hello bytes received so far.
    hello_in: Vec<u8>,
    /// How much of our answer is written.
    answer_sent: usize,
    /// The peer must finish its hello by then.
    pub deadline: Option<Instant>,
    /// Bytes read from the socket so far (for metrics).
    pub bytes_read: u64,
    reader: FrameReader,
}

/// Why an inbound connection is closed.
#[derive(Debug)]
pub enum InboundClose {
    /// Socket trouble or the peer went away.
    Closed(CloseReason),
    /// The peer sent a frame that cannot be decoded.
    Frame(FrameError),
    /// The peer's certificate does not name the node its hello claims to be.
    CertificateMismatch {
        /// The node the hello claims.
        claimed: NodeId,
    },
    /// A message claims to come from another node than the handshake said.
    Impersonation {
        /// The node the handshake named.
        peer: NodeId,
        /// The node the message names.
        claimed: NodeId,
    },
}

impl std::fmt::Display for InboundClose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InboundClose::Closed(reason) => reason.fmt(f),
            InboundClose::Frame(e) => e.fmt(f),
            InboundClose::CertificateMismatch { claimed } => write!(
                f,
                "the peer claims to be node {claimed}, but its certificate does not name {}",
                super::tls::node_dns_name(*claimed)
            ),
            InboundClose::Impersonation { peer, claimed } => {
                write!(
                    f,
                    "peer {peer} sent a message from or to another node ({claimed})"
                )
            }
        }
    }
}

impl From<CloseReason> for InboundClose {
    fn from(reason: CloseReason) -> Self {
        InboundClose::Closed(reason)
    }
}

impl Inbound {
    /// A freshly accepted connection that must say hello before `deadline`.
    pub fn new(
        stream: PeerStream,
        token: Token,
        remote: SocketAddr,
        deadline: Instant,
        frame_bytes_max: usize,
    ) -> Self {
        Inbound {
            stream,
            token,
            remote,
            peer: None,
            hello_in: Vec::with_capacity(HELLO_BYTES),
            answer_sent: 0,
            deadline: Some(deadline),
            bytes_read: 0,
            reader: FrameReader::new(frame_bytes_max),
        }
    }

    /// Reads what the socket has: the hello first, then frames, pushing each message
    /// to `out`. Returns whether the socket may hold more (reading stopped at the
    /// per-turn bound, not at `WouldBlock`).
    pub fn drive(
        &mut self,
        me: NodeId,
        cluster_id: u64,
        members: &BTreeSet<NodeId>,
        out: &mut Vec<Message>,
    ) -> Result<bool, InboundClose> {
        // TLS may hold handshake records the socket did not take yet.
        match self.stream.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(CloseReason::Io(e).into()),
        }
        if self.peer.is_none() && !self.handshake(me, cluster_id, members)? {
            return Ok(false);
        }
        let peer = self.peer.expect("handshake done");
        for _ in 0..READS_PER_TURN_MAX {
            let read = match self.reader.read_from(&mut self.stream) {
                Ok(0) => return Err(CloseReason::Eof.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CloseReason::Io(e).into()),
            };
            debug_assert!(read > 0);
            self.bytes_read += read as u64;
            while let Some(message) = self.reader.next_frame().map_err(InboundClose::Frame)? {
                if message.from != peer || message.to != me {
                    let claimed = if message.from != peer {
                        message.from
                    } else {
                        message.to
                    };
                    return Err(InboundClose::Impersonation { peer, claimed });
                }
                out.push(message);
            }
        }
        Ok(true)
    }

    /// Reads and checks the peer's hello, then answers it. Returns whether it is done.
    fn handshake(
        &mut self,
        me: NodeId,
        cluster_id: u64,
        members: &BTreeSet<NodeId>,
    ) -> Result<bool, InboundClose> {
        read_some(&mut self.stream, &mut self.hello_in, HELLO_BYTES)?;
        let Some(hello) = Hello::decode(&self.hello_in).map_err(handshake_failed)? else {
            return Ok(false);
        };
        hello
            .check(cluster_id, me, None)
            .map_err(handshake_failed)?;
        if !members.contains(&hello.from) || hello.from == me {
            return Err(handshake_failed(HandshakeError::UnknownPeer {
                from: hello.from,
            }));
        }
        // With TLS the hello's claim must match the certificate the peer proved.
        if !self.stream.proves_identity(hello.from) {
            return Err(InboundClose::CertificateMismatch {
                claimed: hello.from,
            });
        }
        let answer = Hello::new(cluster_id, me, hello.from).encode();
        write_some(&mut self.stream, &answer, &mut self.answer_sent)?;
        if self.answer_sent < HELLO_BYTES {
            // A fresh socket's send buffer always takes 40 bytes; anything else is a
            // peer that does not read, which deserves no more patience.
            return Err(CloseReason::Io(io::ErrorKind::WouldBlock.into()).into());
        }
        self.peer = Some(hello.from);
        self.deadline = None;
        Ok(true)
    }
}

fn handshake_failed(e: HandshakeError) -> InboundClose {
    InboundClose::Closed(CloseReason::Handshake(e))
}
