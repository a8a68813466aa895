//! The outbound side of one peer: the connection this node dials to send the peer its
//! messages, the bounded queue of frames for it, and the reconnection schedule.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use raft_core::NodeId;

use super::backoff::Backoff;
use super::handshake::{HandshakeError, Hello, HELLO_BYTES};
use super::stream::PeerStream;
use super::write_queue::{Flushed, WriteQueue};
use super::TransportSettings;

/// Where the outbound connection stands.
#[derive(Debug)]
pub enum Link {
    /// Not connected; dial again at `retry_at`.
    Idle {
        /// When to dial.
        retry_at: Instant,
    },
    /// Waiting for the resolver's answer for the peer's host name.
    Resolving,
    /// A TCP connection in some phase.
    Open(Outbound),
}

/// An open outbound connection.
#[derive(Debug)]
pub struct Outbound {
    /// The socket (TLS over it, if configured).
    pub stream: PeerStream,
    /// Its poll token.
    pub token: Token,
    /// The address dialed.
    pub addr: SocketAddr,
    /// The phase of the connection.
    pub phase: Phase,
    /// When the handshake must be done.
    pub deadline: Instant,
}

/// The phases of an outbound connection.
#[derive(Debug)]
pub enum Phase {
    /// The TCP connect is in progress.
    Connecting,
    /// Our hello is (partly) sent; the peer's answer is (partly) read.
    Handshaking {
        /// Bytes of our hello written.
        sent: usize,
        /// The peer's hello so far.
        received: Vec<u8>,
    },
    /// Handshake done: frames flow.
    Established,
}

/// Why an outbound connection was closed.
#[derive(Debug)]
pub enum CloseReason {
    /// A socket error.
    Io(io::Error),
    /// The peer closed the connection.
    Eof,
    /// The handshake failed.
    Handshake(HandshakeError),
    /// The peer sent bytes on a connection that only this node writes to.
    UnexpectedData,
    /// Nothing was heard from the peer for the silence timeout although this node
    /// sent it messages that call for an answer (a cut link: reconnect rather than
    /// wait for TCP's backed-off retransmissions).
    Silent,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Io(e) => write!(f, "{e}"),
            CloseReason::Eof => f.write_str("closed by the peer"),
            CloseReason::Handshake(e) => write!(f, "handshake failed: {e}"),
            CloseReason::UnexpectedData => {
                f.write_str("the peer sent data on a one-way connection")
            }
            CloseReason::Silent => f.write_str("nothing heard from the peer in time"),
        }
    }
}

/// One peer as this node knows it.
#[derive(Debug)]
pub struct Peer {
    /// The peer's id.
    pub id: NodeId,
    /// The peer's address, `host:port`.
    pub addr: String,
    /// Frames waiting for the connection.
    pub queue: WriteQueue,
    /// The outbound connection.
    pub link: Link,
    /// The reconnection schedule.
    pub backoff: Backoff,
    /// Since when this node has been waiting for any frame from the peer: set by the
    /// first message sent on the established connection that calls for an answer,
    /// cleared by any frame heard and by the connection's close.
    pub awaiting_since: Option<Instant>,
}

impl Peer {
    /// A peer to dial at once.
    pub fn new(
        me: NodeId,
        id: NodeId,
        addr: String,
        settings: &TransportSettings,
        now: Instant,
    ) -> Self {
        Peer {
            id,
            addr,
            queue: WriteQueue::new(
                settings.write_queue_bytes_max,
                settings.write_queue_frames_max,
            ),
            link: Link::Idle { retry_at: now },
            backoff: Backoff::new(
                settings.reconnect_delay_min,
                settings.reconnect_delay_max,
                me.0.wrapping_mul(1_000_003) ^ id.0,
            ),
            awaiting_since: None,
        }
    }

    /// Whether frames can flow now.
    pub fn is_established(&self) -> bool {
        matches!(
            &self.link,
            Link::Open(Outbound {
                phase: Phase::Established,
                ..
            })
        )
    }

    /// Dials `addr`, registering the new socket under `token`.
    pub fn dial(
        &mut self,
        addr: SocketAddr,
        token: Token,
        registry: &Registry,
        settings: &TransportSettings,
        now: Instant,
    ) -> io::Result<()> {
        let sock = TcpStream::connect(addr)?;
        let mut stream = PeerStream::dialed(sock, self.id, settings.tls.as_ref())?;
        stream.register(registry, token, Interest::READABLE | Interest::WRITABLE)?;
        self.link = Link::Open(Outbound {
            stream,
            token,
            addr,
            phase: Phase::Connecting,
            deadline: now + settings.connect_timeout,
        });
        Ok(())
    }

    /// Advances the connection after a readiness event (or a new frame to write).
    /// Returns `Ok(true)` when the handshake completed just now.
    pub fn drive(
        &mut self,
        me: NodeId,
        cluster_id: u64,
        settings: &TransportSettings,
    ) -> Result<bool, CloseReason> {
        let Link::Open(conn) = &mut self.link else {
            return Ok(false);
        };
        if let Phase::Connecting = conn.phase {
            if let Some(e) = conn.stream.take_error().map_err(CloseReason::Io)? {
                return Err(CloseReason::Io(e));
            }
            match conn.stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
                Err(e) => return Err(CloseReason::Io(e)),
            }
            conn.stream
                .set_socket_options(settings.tcp_user_timeout)
                .map_err(CloseReason::Io)?;
            conn.phase = Phase::Handshaking {
                sent: 0,
                received: Vec::with_capacity(HELLO_BYTES),
            };
        }
        if let Phase::Handshaking { sent, received } = &mut conn.phase {
            let hello = Hello::new(cluster_id, me, self.id).encode();
            write_some(&mut conn.stream, &hello, sent)?;
            read_some(&mut conn.stream, received, HELLO_BYTES)?;
            match Hello::decode(received).map_err(CloseReason::Handshake)? {
                None => return Ok(false),
                Some(answer) => {
                    answer
                        .check(cluster_id, me, Some(self.id))
                        .map_err(CloseReason::Handshake)?;
                    if *sent != HELLO_BYTES {
                        // A real peer answers only a whole hello.
                        return Err(CloseReason::UnexpectedData);
                    }
                    conn.phase = Phase::Established;
                    self.backoff.reset();
                    self.flush()?;
                    return Ok(true);
                }
            }
        }
        // Established: the peer never writes on this connection; a read sees its close.
        let mut probe = [0u8; 64];
        match conn.stream.read(&mut probe) {
            Ok(0) => return Err(CloseReason::Eof),
            Ok(_) => return Err(CloseReason::UnexpectedData),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CloseReason::Io(e)),
        }
        self.flush()?;
        Ok(false)
    }

    /// Writes queued frames while the socket takes them (only once established).
    pub fn flush(&mut self) -> Result<Flushed, CloseReason> {
        match &mut self.link {
            Link::Open(Outbound {
                stream,
                phase: Phase::Established,
                ..
            }) => {
                let flushed = self.queue.write_to(stream).map_err(CloseReason::Io)?;
                // TLS may hold sealed records the socket did not take yet.
                match stream.flush() {
                    Ok(()) => Ok(flushed),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Flushed::Blocked),
                    Err(e) => Err(CloseReason::Io(e)),
                }
            }
            Link::Open(conn) => {
                // The TLS handshake may have records to send before the hello.
                match conn.stream.flush() {
                    Ok(()) => Ok(Flushed::Blocked),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Flushed::Blocked),
                    Err(e) => Err(CloseReason::Io(e)),
                }
            }
            _ => Ok(Flushed::Blocked),
        }
    }

    /// Drops the connection (deregistering it) and schedules the next attempt.
    pub fn close(&mut self, registry: &Registry, now: Instant) -> Option<Token> {
        let token = match std::mem::replace(&mut self.link, Link::Resolving) {
            Link::Open(mut conn) => {
                let _ = conn.stream.deregister(registry);
                Some(conn.token)
            }
            _ => None,
        };
        self.queue.discard_partial_frame();
        // Whatever was awaited went with the connection.
        self.awaiting_since = None;
        self.link = Link::Idle {
            retry_at: now + self.backoff.next_delay(),
        };
        token
    }

    /// The deadline this peer needs the loop to wake for, if any.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.link {
            Link::Idle { retry_at } => Some(*retry_at),
            Link::Resolving => None,
            Link::Open(Outbound {
                phase: Phase::Established,
                ..
            }) => None,
            Link::Open(conn) => Some(conn.deadline),
        }
    }
}

/// Writes the rest of `bytes` from `*sent` on, as far as the socket takes it.
pub fn write_some(
    stream: &mut impl Write,
    bytes: &[u8],
    sent: &mut usize,
) -> Result<(), CloseReason> {
    while *sent < bytes.len() {
        match stream.write(&bytes[*sent..]) {
            Ok(0) => return Err(CloseReason::Eof),
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CloseReason::Io(e)),
        }
    }
    Ok(())
}

/// Reads into `buf` until it holds `want` bytes or the socket has nothing more.
pub fn read_some(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
    want: usize,
) -> Result<(), CloseReason> {
    let mut chunk = [0u8; HELLO_BYTES];
    while buf.len() < want {
        let room = (want - buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return Err(CloseReason::Eof),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CloseReason::Io(e)),
        }
    }
    Ok(())
}
