//! The TCP transport between nodes.
//!
//! Each node dials every peer once and writes that peer's messages on this outbound
//! connection; it reads the messages of each peer from the connection the peer dialed
//! (inbound). One-way connections need no tie-breaking between two nodes dialing each
//! other at once, and a reconnecting node never has to guess which of two sockets is
//! current. Every connection opens with a [handshake]; frames are [length-prefixed
//! postcard](frame). Nothing here blocks: sockets are non-blocking, host names are
//! resolved off the loop, and full write queues drop frames.
//!
//! With [`TlsSettings`](tls::TlsSettings) every connection is mutually
//! authenticated TLS 1.3 ([stream], [tls]) and the node id a peer claims must be
//! the one its certificate names.
//!
//! A link cut by the network is noticed, not waited out: a peer that sent nothing
//! for [`peer_silence_timeout`](TransportSettings::peer_silence_timeout) while this
//! node sent it messages that call for an answer is reconnected (both
//! directions), dials give up after
//! [`connect_timeout`](TransportSettings::connect_timeout), and `TCP_USER_TIMEOUT`
//! fails a socket whose data stays unacknowledged. Otherwise, after a heal, the
//! first frames would wait for TCP's exponentially backed-off retransmission timer
//! (seconds after a cut of seconds).

pub mod backoff;
pub mod frame;
pub mod handshake;
pub mod inbound;
pub mod outbound;
pub mod resolve;
pub mod stream;
pub mod tls;
pub mod write_queue;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Interest, Registry, Token, Waker};
use raft_core::{Message, MessageBody, NodeId};

use self::frame::encode_frame;
use self::inbound::Inbound;
use self::outbound::{CloseReason, Link, Peer};
use self::resolve::Resolver;
use self::stream::PeerStream;
use self::tls::TlsSettings;
use self::write_queue::Pushed;
use crate::metrics::PeerTraffic;

/// The poll token of the peer listener.
pub const LISTENER_TOKEN: Token = Token(0);
/// The poll token of the loop's waker.
pub const WAKER_TOKEN: Token = Token(1);
const FIRST_CONNECTION_TOKEN: usize = 2;

/// Accepted connections beyond this many per known peer (plus a few) are refused, so
/// a flood of connections cannot exhaust the node's file descriptors.
const INBOUND_PER_PEER_MAX: usize = 4;
const INBOUND_SLACK: usize = 8;

/// The transport's bounds and timeouts.
#[derive(Clone, Debug)]
pub struct TransportSettings {
    /// This node.
    pub me: NodeId,
    /// The cluster this node belongs to; connections from other clusters are refused.
    pub cluster_id: u64,
    /// The largest frame body accepted or sent.
    pub frame_bytes_max: usize,
    /// The most bytes queued for one peer.
    pub write_queue_bytes_max: usize,
    /// The most frames queued for one peer.
    pub write_queue_frames_max: usize,
    /// The first reconnection delay.
    pub reconnect_delay_min: Duration,
    /// The longest reconnection delay.
    pub reconnect_delay_max: Duration,
    /// An accepted connection must finish its handshake within this time.
    pub handshake_timeout: Duration,
    /// A dial must connect and finish its handshake within this time, then it is
    /// abandoned and redialed (a dial into a cut network would otherwise wait for
    /// TCP's SYN retransmissions, 1 s, 3 s, 7 s...).
    pub connect_timeout: Duration,
    /// A peer that sent no frame for this long while this node awaited an answer
    /// from it is reconnected.
    pub peer_silence_timeout: Duration,
    /// `TCP_USER_TIMEOUT` of peer sockets (Linux): unacknowledged data older than
    /// this fails the connection. `None` leaves the system's default.
    pub tcp_user_timeout: Option<Duration>,
    /// Mutual TLS between peers; `None` for plain TCP.
    pub tls: Option<TlsSettings>,
}

/// What the transport knows of one peer, for status pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConnection {
    /// The peer.
    pub id: NodeId,
    /// Its address.
    pub addr: String,
    /// Whether this node's connection to it is up (handshake done).
    pub connected: bool,
    /// Bytes waiting to be sent to it.
    pub queued_bytes: usize,
    /// Frames dropped for it because its queue was full.
    pub dropped_frames: u64,
}

/// The transport of one node.
#[derive(Debug)]
pub struct Transport {
    me: NodeId,
    cluster_id: u64,
    settings: TransportSettings,
    listener: TcpListener,
    peers: BTreeMap<NodeId, Peer>,
    outbound_tokens: BTreeMap<Token, NodeId>,
    inbound: BTreeMap<Token, Inbound>,
    /// The nodes allowed to connect: every peer.
    members: BTreeSet<NodeId>,
    next_token: usize,
    resolver: Resolver,
    /// Inbound connections that stopped reading at the per-turn bound.
    pending_reads: BTreeSet<Token>,
    /// Peers with frames queued since the last flush.
    to_flush: BTreeSet<NodeId>,
    /// Messages and bytes to and from each peer (for metrics).
    traffic: BTreeMap<NodeId, PeerTraffic>,
}

impl Transport {
    /// A transport listening on `listener`, with `peers` (id to `host:port`; this
    /// node's own entry is skipped).
    pub fn new(
        mut listener: TcpListener,
        peers: &BTreeMap<NodeId, String>,
        settings: TransportSettings,
        registry: &Registry,
        waker: Arc<Waker>,
        now: Instant,
    ) -> std::io::Result<Transport> {
        registry.register(&mut listener, LISTENER_TOKEN, Interest::READABLE)?;
        let (me, cluster_id) = (settings.me, settings.cluster_id);
        let mut transport = Transport {
            me,
            cluster_id,
            settings,
            listener,
            peers: BTreeMap::new(),
            outbound_tokens: BTreeMap::new(),
            inbound: BTreeMap::new(),
            members: BTreeSet::new(),
            next_token: FIRST_CONNECTION_TOKEN,
            resolver: Resolver::new(waker),
            pending_reads: BTreeSet::new(),
            to_flush: BTreeSet::new(),
            traffic: BTreeMap::new(),
        };
        for (id, addr) in peers.iter().filter(|(id, _)| **id != me) {
            transport.add_peer(*id, addr.clone(), now);
        }
        Ok(transport)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of peer `id`, if known.
    pub fn peer_addr(&self, id: NodeId) -> Option<&str> {
        self.peers.get(&id).map(|p| p.addr.as_str())
    }

    /// Adds (or re-addresses) a peer at runtime; it is dialed at once.
    pub fn add_peer(&mut self, id: NodeId, addr: String, now: Instant) {
        debug_assert_ne!(id, self.me);
        self.members.insert(id);
        if self.peers.get(&id).is_some_and(|p| p.addr == addr) {
            return;
        }
        let peer = Peer::new(self.me, id, addr, &self.settings, now);
        if let Some(old) = self.peers.insert(id, peer) {
            // Dropping the old peer closes its socket (epoll forgets a closed socket);
            // its token must not route events to the new one.
            self.outbound_tokens.retain(|_, peer| *peer != id);
            tracing::info!(peer = %id, old_addr = %old.addr, "peer address changed");
        }
    }

    /// Accepts connections from `id` (a member whose address this node does not know:
    /// it can hear the member, not dial it).
    pub fn allow_peer(&mut self, id: NodeId) {
        if id != self.me {
            self.members.insert(id);
        }
    }

    /// Every peer this node dials or hears.
    pub fn known_peers(&self) -> Vec<NodeId> {
        let mut known: BTreeSet<NodeId> = self.members.clone();
        known.extend(self.peers.keys().copied());
        known.into_iter().collect()
    }

    /// Forgets a peer at runtime, closing its connections.
    pub fn remove_peer(&mut self, id: NodeId, registry: &Registry, now: Instant) {
        self.members.remove(&id);
        if let Some(mut peer) = self.peers.remove(&id) {
            if let Some(token) = peer.close(registry, now) {
                self.outbound_tokens.remove(&token);
            }
        }
        self.close_inbound_from(id, registry);
    }

    fn allocate_token(&mut self) -> Token {
        let token = Token(self.next_token);
        self.next_token += 1;
        token
    }

    /// Handles one readiness event, pushing decoded messages to `out`.
    pub fn on_event(
        &mut self,
        registry: &Registry,
        token: Token,
        now: Instant,
        out: &mut Vec<Message>,
    ) {
        if token == LISTENER_TOKEN {
            self.accept_all(registry, now);
        } else if let Some(id) = self.outbound_tokens.get(&token).copied() {
            self.drive_outbound(id, registry, now);
        } else if self.inbound.contains_key(&token) {
            self.drive_inbound(token, registry, out);
        }
    }

    /// Continues reading connections that hit the per-turn read bound.
    pub fn read_pending(&mut self, registry: &Registry, out: &mut Vec<Message>) {
        let pending = std::mem::take(&mut self.pending_reads);
        for token in pending {
            self.drive_inbound(token, registry, out);
        }
    }

    /// Whether some connection has more to read right away (poll must not sleep).
    pub fn has_pending_reads(&self) -> bool {
        !self.pending_reads.is_empty()
    }

    fn accept_all(&mut self, registry: &Registry, now: Instant) {
        let inbound_max = self.members.len() * INBOUND_PER_PEER_MAX + INBOUND_SLACK;
        loop {
            let (stream, remote) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a peer connection failed");
                    return;
                }
            };
            if self.inbound.len() >= inbound_max {
                tracing::warn!(%remote, inbound_max, "refusing a connection: too many inbound connections");
                continue;
            }
            let token = self.allocate_token();
            let tls = self.settings.tls.as_ref();
            // TLS writes too (its handshake), and must hear when it may.
            let interest = if tls.is_some() {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let registered = PeerStream::accepted(stream, tls).and_then(|mut stream| {
                stream.set_socket_options(self.settings.tcp_user_timeout)?;
                stream.register(registry, token, interest)?;
                Ok(stream)
            });
            let stream = match registered {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(%remote, error = %e, "cannot set up an accepted connection");
                    continue;
                }
            };
            let deadline = now + self.settings.handshake_timeout;
            let conn = Inbound::new(
                stream,
                token,
                remote,
                deadline,
                self.settings.frame_bytes_max,
            );
            self.inbound.insert(token, conn);
            // Data may already be waiting; edge-triggered readiness would not repeat it.
            self.pending_reads.insert(token);
        }
    }

    fn drive_inbound(&mut self, token: Token, registry: &Registry, out: &mut Vec<Message>) {
        let Some(conn) = self.inbound.get_mut(&token) else {
            return;
        };
        let was_anonymous = conn.peer.is_none();
        let (messages_before, bytes_before) = (out.len(), conn.bytes_read);
        let driven = conn.drive(self.me, self.cluster_id, &self.members, out);
        if let Some(peer) = conn.peer {
            let traffic = self.traffic.entry(peer).or_default();
            traffic.messages_received += (out.len() - messages_before) as u64;
            traffic.bytes_received += conn.bytes_read - bytes_before;
            if out.len() > messages_before {
                if let Some(peer) = self.peers.get_mut(&peer) {
                    peer.awaiting_since = None;
                }
            }
        }
        let conn = self.inbound.get_mut(&token).expect("still present");
        match driven {
            Ok(more) => {
                if was_anonymous {
                    if let Some(peer) = conn.peer {
                        tracing::debug!(%peer, remote = %conn.remote, "accepted a peer connection");
                    }
                }
                if more {
                    self.pending_reads.insert(token);
                }
            }
            Err(reason) => {
                let mut conn = self.inbound.remove(&token).expect("present");
                let _ = conn.stream.deregister(registry);
                self.pending_reads.remove(&token);
                match (&reason, conn.peer) {
                    (inbound::InboundClose::Closed(CloseReason::Eof), Some(peer)) => {
                        tracing::debug!(%peer, remote = %conn.remote, "peer closed its connection")
                    }
                    (_, peer) => tracing::warn!(
                        remote = %conn.remote,
                        peer = ?peer,
                        cluster_id = self.cluster_id,
                        "closing an inbound connection: {reason}"
                    ),
                }
            }
        }
    }

    fn drive_outbound(&mut self, id: NodeId, registry: &Registry, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        match peer.drive(self.me, self.cluster_id, &self.settings) {
            Ok(true) => tracing::info!(peer = %id, addr = %peer.addr, "connected to peer"),
            Ok(false) => {}
            Err(reason) => self.close_outbound(id, registry, now, &reason),
        }
    }

    fn close_outbound(
        &mut self,
        id: NodeId,
        registry: &Registry,
        now: Instant,
        reason: &CloseReason,
    ) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let was_established = peer.is_established();
        if let Some(token) = peer.close(registry, now) {
            self.outbound_tokens.remove(&token);
        }
        let retry_in = match peer.link {
            Link::Idle { retry_at } => retry_at.saturating_duration_since(now),
            _ => Duration::ZERO,
        };
        // A TLS failure (a certificate refused) is as much a warning as a bad hello.
        let refused = match reason {
            CloseReason::Handshake(_) | CloseReason::UnexpectedData => true,
            CloseReason::Io(e) => e.kind() == std::io::ErrorKind::InvalidData,
            _ => false,
        };
        match reason {
            _ if refused => tracing::warn!(
                peer = %id, addr = %peer.addr, cluster_id = self.cluster_id, ?retry_in,
                "closing the connection to a peer: {reason}"
            ),
            _ if was_established => tracing::info!(
                peer = %id, addr = %peer.addr, ?retry_in, "lost the connection to a peer: {reason}"
            ),
            _ => tracing::debug!(
                peer = %id, addr = %peer.addr, attempts = peer.backoff.attempts(), ?retry_in,
                "cannot connect to a peer: {reason}"
            ),
        }
    }

    /// Dials peers whose retry time came, closes connections whose handshake is
    /// overdue (a peer that connects and never speaks), and reconnects silent peers.
    pub fn on_timers(&mut self, registry: &Registry, now: Instant) {
        self.reconnect_silent_peers(registry, now);
        let due: Vec<NodeId> = self
            .peers
            .values()
            .filter(|p| p.deadline().is_some_and(|d| d <= now))
            .map(|p| p.id)
            .collect();
        for id in due {
            let peer = self.peers.get_mut(&id).expect("listed above");
            match &peer.link {
                Link::Idle { .. } => match Resolver::parse_literal(&peer.addr) {
                    Some(addr) => self.dial(id, addr, registry, now),
                    None => {
                        peer.link = Link::Resolving;
                        self.resolver.request(id, &peer.addr);
                    }
                },
                Link::Open(_) => {
                    let reason = CloseReason::Handshake(handshake::HandshakeError::Timeout);
                    self.close_outbound(id, registry, now, &reason);
                }
                Link::Resolving => {}
            }
        }
        let overdue: Vec<Token> = self
            .inbound
            .values()
            .filter(|c| c.deadline.is_some_and(|d| d <= now))
            .map(|c| c.token)
            .collect();
        for token in overdue {
            let mut conn = self.inbound.remove(&token).expect("listed above");
            let _ = conn.stream.deregister(registry);
            self.pending_reads.remove(&token);
            tracing::warn!(
                remote = %conn.remote,
                "closing an inbound connection: {}",
                handshake::HandshakeError::Timeout
            );
        }
    }

    /// Closes both directions to every peer that has not answered for the silence
    /// timeout; the outbound side redials at once (its backoff is reset by each
    /// established connection), and the peer, finding its connection to this node
    /// reset, redials too.
    fn reconnect_silent_peers(&mut self, registry: &Registry, now: Instant) {
        let silence = self.settings.peer_silence_timeout;
        let silent: Vec<NodeId> = self
            .peers
            .values()
            .filter(|p| p.awaiting_since.is_some_and(|t| now >= t + silence))
            .map(|p| p.id)
            .collect();
        for id in silent {
            let peer = self.peers.get_mut(&id).expect("listed above");
            peer.awaiting_since = None;
            if matches!(peer.link, Link::Open(_)) {
                self.close_outbound(id, registry, now, &CloseReason::Silent);
            }
            self.close_inbound_from(id, registry);
            debug_assert!(!self.is_connected(id));
        }
    }

    fn close_inbound_from(&mut self, id: NodeId, registry: &Registry) {
        let from_peer: Vec<Token> = self
            .inbound
            .iter()
            .filter(|(_, c)| c.peer == Some(id))
            .map(|(t, _)| *t)
            .collect();
        for token in from_peer {
            if let Some(mut conn) = self.inbound.remove(&token) {
                let _ = conn.stream.deregister(registry);
                self.pending_reads.remove(&token);
            }
        }
    }

    /// Takes the resolver's answers and dials.
    pub fn on_resolved(&mut self, registry: &Registry, now: Instant) {
        while let Some((id, name, answer)) = self.resolver.try_next() {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            if !matches!(peer.link, Link::Resolving) || peer.addr != name {
                continue;
            }
            match answer.map(|addrs| addrs.into_iter().next()) {
                Ok(Some(addr)) => self.dial(id, addr, registry, now),
                Ok(None) => {
                    let reason = CloseReason::Io(std::io::Error::other(format!(
                        "{name} resolves to no address"
                    )));
                    self.close_outbound(id, registry, now, &reason);
                }
                Err(e) => {
                    let reason = CloseReason::Io(std::io::Error::other(format!(
                        "cannot resolve {name}: {e}"
                    )));
                    self.close_outbound(id, registry, now, &reason);
                }
            }
        }
    }

    fn dial(&mut self, id: NodeId, addr: SocketAddr, registry: &Registry, now: Instant) {
        let token = self.allocate_token();
        let peer = self.peers.get_mut(&id).expect("dialing a known peer");
        match peer.dial(addr, token, registry, &self.settings, now) {
            Ok(()) => {
                self.outbound_tokens.insert(token, id);
            }
            Err(e) => self.close_outbound(id, registry, now, &CloseReason::Io(e)),
        }
    }

    /// The earliest time the transport needs the loop awake for.
    pub fn next_deadline(&self) -> Option<Instant> {
        let peers = self.peers.values().filter_map(Peer::deadline);
        let inbound = self.inbound.values().filter_map(|c| c.deadline);
        let silence = self.settings.peer_silence_timeout;
        let silent = self
            .peers
            .values()
            .filter_map(move |p| p.awaiting_since.map(|t| t + silence));
        peers.chain(inbound).chain(silent).min()
    }

    /// Queues `message` for its recipient; it goes out at the next [`flush`](Self::flush).
    pub fn send(&mut self, message: &Message) {
        let Some(peer) = self.peers.get_mut(&message.to) else {
            tracing::debug!(to = %message.to, kind = message.body.kind(), "dropping a message to an unknown peer");
            return;
        };
        let mut frame = peer.queue.buffer();
        if let Err(e) = encode_frame(message, self.settings.frame_bytes_max, &mut frame) {
            tracing::error!(to = %message.to, kind = message.body.kind(), "dropping a message: {e}");
            peer.queue.recycle(frame);
            return;
        }
        let droppable = matches!(
            message.body,
            MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot(_)
        );
        // Only a message on an established connection can be answered; a dial in
        // progress has `connect_timeout` for its own bound.
        if peer.awaiting_since.is_none()
            && peer.is_established()
            && calls_for_an_answer(&message.body)
        {
            peer.awaiting_since = Some(crate::clock::now());
        }
        let frame_bytes = frame.len() as u64;
        let pushed = peer.queue.push(frame, droppable);
        if !matches!(pushed, Pushed::DroppedNew) {
            let traffic = self.traffic.entry(message.to).or_default();
            traffic.messages_sent += 1;
            traffic.bytes_sent += frame_bytes;
        }
        match pushed {
            Pushed::Queued => {}
            Pushed::DroppedOldest(n) => {
                tracing::debug!(peer = %peer.id, dropped = n, "write queue full: dropped the oldest AppendEntries")
            }
            Pushed::DroppedNew => {
                tracing::debug!(peer = %peer.id, kind = message.body.kind(), "write queue full: dropped a new message")
            }
        }
        self.to_flush.insert(message.to);
    }

    /// Writes queued frames to every peer whose socket takes them, never blocking.
    pub fn flush(&mut self, registry: &Registry, now: Instant) {
        let to_flush = std::mem::take(&mut self.to_flush);
        for id in to_flush {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            if let Err(reason) = peer.flush() {
                self.close_outbound(id, registry, now, &reason);
            }
        }
    }

    /// Whether the connection to `id` is established.
    pub fn is_connected(&self, id: NodeId) -> bool {
        self.peers.get(&id).is_some_and(|p| p.is_established())
    }

    /// The messages and bytes sent to and received from each peer so far.
    pub fn traffic(&self) -> &BTreeMap<NodeId, PeerTraffic> {
        &self.traffic
    }

    /// What the transport knows of each peer.
    pub fn peer_status(&self) -> Vec<PeerConnection> {
        self.peers
            .values()
            .map(|p| PeerConnection {
                id: p.id,
                addr: p.addr.clone(),
                connected: p.is_established(),
                queued_bytes: p.queue.queued_bytes(),
                dropped_frames: p.queue.dropped_frames(),
            })
            .collect()
    }
}

/// Whether the recipient of `body` answers it (so that silence means trouble).
/// Responses are not answered, and TimeoutNow is answered by the election it starts.
fn calls_for_an_answer(body: &MessageBody) -> bool {
    matches!(
        body,
        MessageBody::VoteRequest { .. }
            | MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::ReadIndexRequest { .. }
            | MessageBody::InstallSnapshot(_)
    )
}

#[cfg(test)]
mod tests;
