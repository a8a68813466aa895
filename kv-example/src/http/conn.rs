//! One HTTP connection of the event-loop front end: its socket (with TLS, its rustls
//! session), the bytes received and not yet parsed, the bytes to send, and its
//! requests in the order they came, each answered or waiting. Answers go out in
//! request order (HTTP/1.1 pipelining), so a request answered early waits behind the
//! ones before it.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;
use rustls::ServerConnection;

use super::request::Head;
use super::response::Response;
use crate::api::RequestId;
use crate::drain::InFlightGuard;
use crate::ticket::RequestKey;

/// The most bytes a connection buffers unparsed: a whole request of the largest size
/// fits, with room for the start of the next.
pub const INBUF_BYTES_MAX: usize =
    super::request::HEAD_BYTES_MAX + super::request::BODY_BYTES_MAX + READ_CHUNK_BYTES;

/// Bytes read from a socket at a time (the size of the loop's scratch buffer).
pub const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Where a request is.
#[derive(Debug)]
pub enum SlotState {
    /// Answered: these bytes go out once the requests before it have gone.
    Ready(Vec<u8>),
    /// A write in flight: `committed` once raft-mio said where it committed.
    Write {
        /// Its request id (named in a "fate unknown" answer).
        id: RequestId,
        /// The index it committed at, once known.
        committed: Option<u64>,
    },
    /// A linearizable read of `key`, waiting for its barrier.
    Read {
        /// The key to read once the barrier is there.
        key: String,
    },
    /// Served by a worker thread (status, membership, ...).
    Admin,
}

/// One request of a connection.
#[derive(Debug)]
pub struct Slot {
    /// Its key for [`crate::ticket`]; keys grow along a connection's slots.
    pub key: RequestKey,
    /// Its head (for the answer: keep-alive, redirects), if it is a request.
    pub head: Option<Head>,
    /// Whether the connection stays open after its answer.
    pub keep_alive: bool,
    /// Where it is.
    pub state: SlotState,
    /// Counts it in flight until its answer has gone out (see [`crate::drain`]).
    pub guard: Option<InFlightGuard>,
    /// When it was read (its request timeout runs from here).
    pub started: Instant,
}

impl Slot {
    /// Answers the slot with `response`.
    pub fn answer(&mut self, response: &Response) {
        let mut bytes = Vec::with_capacity(128 + response.body.len());
        response
            .write_to(&mut bytes, self.keep_alive)
            .expect("writing to memory does not fail");
        self.state = SlotState::Ready(bytes);
    }
}

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// The TLS session, for HTTPS.
    pub tls: Option<ServerConnection>,
    /// Received, not yet parsed (plaintext).
    pub inbuf: Vec<u8>,
    /// To send, not yet written (plain HTTP; with TLS the session buffers it).
    out: Vec<u8>,
    /// The requests, oldest first.
    pub slots: VecDeque<Slot>,
    /// The session that numbers this connection's writes.
    pub session: crate::api::Session,
    /// `100 Continue` went out for the request at the front of `inbuf`.
    pub continue_sent: bool,
    /// The client sent its last byte (or the connection failed).
    pub read_closed: bool,
    /// No more requests are read (after `Connection: close` or a bad request).
    pub closing: bool,
    /// Reading stopped because `inbuf` was full.
    pub read_paused: bool,
    /// The socket is registered for writability (output is waiting).
    pub wants_writable: bool,
    /// When the connection last moved bytes.
    pub last_active: Instant,
    /// Guards of answers handed to `out` that have not all left yet.
    sent_guards: Vec<InFlightGuard>,
}

impl Conn {
    /// A new connection (TLS if `tls` is given).
    pub fn new(stream: TcpStream, tls: Option<ServerConnection>, now: Instant) -> Conn {
        Conn {
            stream,
            tls,
            inbuf: Vec::new(),
            out: Vec::new(),
            slots: VecDeque::new(),
            session: crate::api::Session::new(),
            continue_sent: false,
            read_closed: false,
            closing: false,
            read_paused: false,
            wants_writable: false,
            last_active: now,
            sent_guards: Vec::new(),
        }
    }

    /// Whether every request read so far is answered.
    pub fn all_answered(&self) -> bool {
        self.slots
            .back()
            .is_none_or(|slot| matches!(slot.state, SlotState::Ready(_)))
    }

    /// The slot of request `key`, if it is still here.
    pub fn slot_mut(&mut self, key: RequestKey) -> Option<&mut Slot> {
        let at = self.slots.binary_search_by_key(&key, |s| s.key).ok()?;
        self.slots.get_mut(at)
    }

    /// Reads what the socket has (through TLS, if on) into `inbuf`, up to its bound,
    /// through `scratch` (the loop's, so that no read zeroes a buffer of its own). An
    /// error means the connection is broken.
    pub fn read_in(&mut self, scratch: &mut [u8], now: Instant) -> io::Result<()> {
        debug_assert!(!scratch.is_empty());
        self.read_paused = false;
        while !self.read_closed {
            if self.inbuf.len() >= INBUF_BYTES_MAX {
                self.read_paused = true;
                return Ok(());
            }
            let got = match &mut self.tls {
                None => read_chunk(&mut self.stream, scratch, &mut self.inbuf),
                Some(tls) => read_tls(tls, &mut self.stream, scratch, &mut self.inbuf),
            };
            match got {
                Ok(Some(0)) => self.read_closed = true,
                // A read that did not fill the scratch buffer emptied the socket:
                // epoll reports the next bytes that arrive (as a new edge), so the
                // read that would only say "nothing more" is saved, one system call
                // per request. (TLS may hold more plaintext than one read; it reads
                // on until the socket says so.)
                Ok(Some(n)) if n < scratch.len() && self.tls.is_none() => {
                    self.last_active = now;
                    return Ok(());
                }
                Ok(Some(_)) => self.last_active = now,
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Moves the answered requests at the front into the output, in order. Returns
    /// whether one of them closes the connection.
    pub fn take_answers(&mut self) -> bool {
        let mut closes = false;
        while let Some(slot) = self.slots.front() {
            if !matches!(slot.state, SlotState::Ready(_)) {
                break;
            }
            let mut slot = self.slots.pop_front().expect("front exists");
            let SlotState::Ready(bytes) = std::mem::replace(&mut slot.state, SlotState::Admin)
            else {
                unreachable!("checked above")
            };
            match &mut self.tls {
                None => self.out.extend_from_slice(&bytes),
                Some(tls) => tls
                    .writer()
                    .write_all(&bytes)
                    .expect("the TLS session's plaintext buffer is unbounded"),
            }
            self.sent_guards.extend(slot.guard);
            if !slot.keep_alive {
                // Nothing after a closing answer is answered.
                closes = true;
                self.slots.clear();
                break;
            }
        }
        closes
    }

    /// Writes what the output holds until the socket takes no more. Returns whether
    /// everything went out. An error means the connection is broken.
    pub fn write_out(&mut self, now: Instant) -> io::Result<bool> {
        let done = match &mut self.tls {
            None => {
                while !self.out.is_empty() {
                    match self.stream.write(&self.out) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            self.out.drain(..n);
                            self.last_active = now;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                self.out.is_empty()
            }
            Some(tls) => {
                while tls.wants_write() {
                    match tls.write_tls(&mut self.stream) {
                        Ok(_) => self.last_active = now,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                !tls.wants_write()
            }
        };
        if done {
            self.sent_guards.clear();
        }
        Ok(done)
    }

    /// Says goodbye before the socket is dropped: over TLS a close_notify, so the
    /// client can tell the end from a cut (best effort: the socket does not block).
    pub fn close(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            let _ = tls.write_tls(&mut self.stream);
        }
    }
}

/// Reads one chunk from a plain socket through `scratch` onto the end of `into`:
/// `Some(0)` at the end of the stream, `None` when nothing is there now.
fn read_chunk(
    stream: &mut impl Read,
    scratch: &mut [u8],
    into: &mut Vec<u8>,
) -> io::Result<Option<usize>> {
    loop {
        match stream.read(scratch) {
            Ok(n) => {
                into.extend_from_slice(&scratch[..n]);
                return Ok(Some(n));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// Reads TLS records from the socket once, then the plaintext they carried into
/// `into`: like [`read_chunk`] for the plaintext (`Some(0)` once the client closed).
fn read_tls(
    tls: &mut ServerConnection,
    stream: &mut TcpStream,
    scratch: &mut [u8],
    into: &mut Vec<u8>,
) -> io::Result<Option<usize>> {
    let records = loop {
        match tls.read_tls(stream) {
            Ok(0) => return Ok(Some(0)),
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    if let Err(e) = tls.process_new_packets() {
        // Tell the client why (an alert), then give up on the connection.
        let _ = tls.write_tls(stream);
        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
    }
    // All of it: plaintext left in the session would get no readiness event.
    loop {
        match read_chunk(&mut tls.reader(), scratch, into) {
            Ok(Some(0)) => return Ok(Some(0)),
            Ok(Some(_)) => {}
            // Records with no plaintext (the handshake) are progress too.
            Ok(None) => return Ok(Some(records)),
            // The client closed without a close_notify: the end all the same.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Some(0)),
            Err(e) => return Err(e),
        }
    }
}
