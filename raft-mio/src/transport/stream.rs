//! A peer connection's byte stream: plain TCP, or TLS driven over the non-blocking
//! socket through rustls's sans-IO [`Connection`](rustls::Connection).
//!
//! Both kinds read and write like a non-blocking socket: `WouldBlock` means "wait
//! for readiness". TLS adds one rule: bytes a write accepted may still sit in the
//! TLS layer's bounded buffer, so the owner calls [`PeerStream::flush`] whenever
//! the socket turns writable (and after each write) until it stops answering
//! `WouldBlock`. The TLS handshake needs no phase of its own: it advances inside
//! these reads and writes, and plaintext written before it ends waits in the same
//! bounded buffer.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use raft_core::NodeId;

use super::tls::{certificate_names_node, node_server_name, TlsSettings};

/// The most bytes (plaintext waiting for the handshake, plus sealed records) the TLS
/// layer holds for one connection before writes answer `WouldBlock`.
const TLS_BUFFER_BYTES_MAX: usize = 256 << 10;

/// A peer connection's stream.
#[derive(Debug)]
pub enum PeerStream {
    /// Bytes as they are.
    Plain(TcpStream),
    /// TLS over the socket.
    Tls(Box<TlsStream>),
}

/// rustls over a non-blocking socket.
#[derive(Debug)]
pub struct TlsStream {
    conn: rustls::Connection,
    sock: TcpStream,
}

impl PeerStream {
    /// The dialer's stream to node `to`: TLS as a client asking for `to`'s name if
    /// `tls` is set.
    pub fn dialed(sock: TcpStream, to: NodeId, tls: Option<&TlsSettings>) -> io::Result<Self> {
        let Some(tls) = tls else {
            return Ok(PeerStream::Plain(sock));
        };
        let conn = rustls::ClientConnection::new(tls.client.clone(), node_server_name(to))
            .map_err(io::Error::other)?;
        Ok(PeerStream::tls(conn.into(), sock))
    }

    /// The acceptor's stream: TLS as a server (client certificate required) if `tls`
    /// is set.
    pub fn accepted(sock: TcpStream, tls: Option<&TlsSettings>) -> io::Result<Self> {
        let Some(tls) = tls else {
            return Ok(PeerStream::Plain(sock));
        };
        let conn = rustls::ServerConnection::new(tls.server.clone()).map_err(io::Error::other)?;
        Ok(PeerStream::tls(conn.into(), sock))
    }

    fn tls(mut conn: rustls::Connection, sock: TcpStream) -> Self {
        conn.set_buffer_limit(Some(TLS_BUFFER_BYTES_MAX));
        PeerStream::Tls(Box::new(TlsStream { conn, sock }))
    }

    /// The socket underneath.
    pub fn socket(&self) -> &TcpStream {
        match self {
            PeerStream::Plain(sock) => sock,
            PeerStream::Tls(tls) => &tls.sock,
        }
    }

    fn socket_mut(&mut self) -> &mut TcpStream {
        match self {
            PeerStream::Plain(sock) => sock,
            PeerStream::Tls(tls) => &mut tls.sock,
        }
    }

    /// Registers the socket with the poll.
    pub fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.socket_mut().register(registry, token, interest)
    }

    /// Deregisters the socket.
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.socket_mut().deregister(registry)
    }

    /// Whether this stream is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, PeerStream::Tls(_))
    }

    /// Whether the remote end proved, with a certificate from the CA, that it is node
    /// `id` (always true without TLS: then the hello is all there is).
    pub fn proves_identity(&self, id: NodeId) -> bool {
        match self {
            PeerStream::Plain(_) => true,
            PeerStream::Tls(tls) => tls
                .conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .is_some_and(|cert| certificate_names_node(cert, id)),
        }
    }

    /// The connection's socket-level error, if any (a failed connect).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket().take_error()
    }

    /// The remote address (an error while a connect is in progress).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket().peer_addr()
    }

    /// Sets the socket options of a peer connection: no Nagle delay, and
    /// `TCP_USER_TIMEOUT` so that data left unacknowledged for `user_timeout` (a
    /// peer cut off by the network) fails the connection instead of waiting for
    /// TCP's backed-off retransmissions.
    pub fn set_socket_options(&self, user_timeout: Option<Duration>) -> io::Result<()> {
        let sock = self.socket();
        sock.set_nodelay(true)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(timeout) = user_timeout {
            socket2::SockRef::from(sock).set_tcp_user_timeout(Some(timeout))?;
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = user_timeout;
        Ok(())
    }
}

impl Read for PeerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            PeerStream::Plain(sock) => sock.read(buf),
            PeerStream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for PeerStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            PeerStream::Plain(sock) => sock.write_vectored(bufs),
            PeerStream::Tls(tls) => tls.write_vectored(bufs),
        }
    }

    /// Pushes the TLS layer's buffered records to the socket: `WouldBlock` if some
    /// remain (wait for writability and call again). A no-op for plain TCP.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            PeerStream::Plain(_) => Ok(()),
            PeerStream::Tls(tls) => {
                if tls.write_records()? {
                    Ok(())
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                }
            }
        }
    }
}

impl TlsStream {
    /// Plaintext from the peer: what rustls has decrypted, else records read from the
    /// socket and processed (handshake messages are answered on the way). Each pass
    /// reads at most one buffer of records, so the loop ends at the socket's
    /// `WouldBlock`, at the end of the stream, or as soon as a record yields
    /// plaintext.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.conn.read_tls(&mut self.sock)? == 0 {
                return Ok(0);
            }
            let state = self.conn.process_new_packets().map_err(|e| {
                // Tell the peer why (an alert) before the connection is dropped.
                let _ = self.write_records();
                io::Error::new(io::ErrorKind::InvalidData, e)
            })?;
            // Handshake answers (and alerts) go out at once.
            self.write_records()?;
            if state.peer_has_closed() && state.plaintext_bytes_to_read() == 0 {
                return Ok(0);
            }
        }
    }

    /// Seals plaintext into the bounded TLS buffer and writes what the socket takes.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let wanted: usize = bufs.iter().map(|b| b.len()).sum();
        // Older records first; a full socket still leaves room in the buffer.
        self.write_records()?;
        let accepted = self.conn.writer().write_vectored(bufs)?;
        debug_assert!(accepted <= wanted);
        if accepted == 0 && wanted > 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.write_records()?;
        Ok(accepted)
    }

    /// Writes buffered records to the socket; whether none is left.
    fn write_records(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn peer_sockets_get_no_delay_and_the_user_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let std_stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let stream = PeerStream::Plain(TcpStream::from_std(std_stream));
        stream
            .set_socket_options(Some(Duration::from_millis(1500)))
            .unwrap();
        let sock = socket2::SockRef::from(stream.socket());
        assert!(sock.tcp_nodelay().unwrap());
        assert_eq!(
            sock.tcp_user_timeout().unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert!(!stream.is_tls());
        assert!(
            stream.proves_identity(NodeId(7)),
            "plain TCP has only the hello"
        );
    }
}
