//! The HTTP front end's event loop: one thread and one `mio::Poll` serve every
//! connection, with no thread per connection and no thread wake-up per request.
//!
//! ## One turn
//! 1. Poll: the listener, the connections, and the waker that answers ring.
//! 2. Read what the ready connections sent and parse every whole request
//!    ([`request::parse_request`](super::request::parse_request)):
//!    - a write starts at once ([`Backend::start_write`]); its answer comes back
//!      through a [`Ticket`](crate::ticket::Ticket) when it has committed and been applied here;
//!    - a linearizable read joins this turn's batch; a stale read is answered now;
//!    - anything else (status, metrics, membership, leadership) runs on a worker
//!      thread of its own, since those calls block;
//!    - a bad request is answered, and its connection closed.
//! 3. Ask one read barrier for the whole batch ([`Backend::start_read_barrier`]): a
//!    single ReadIndex (one heartbeat round, shared with any barrier asked for while
//!    the leader confirms one) serves every read that arrived in this turn.
//! 4. Take the answers that came in ([`Completions`]): write results, barriers (their
//!    reads are answered from the local store), workers' responses.
//! 5. Answer requests that reached the request timeout ("fate unknown" for a write).
//! 6. Write the answered requests out, in request order on each connection.
//!
//! A connection's requests are started one at a time, in order, each once the one
//! before it is answered (as a thread per connection would): concurrency comes from
//! connections. Every queue is bounded: connections by `connections_max`, answers
//! waiting to go out on one connection by [`PIPELINE_MAX`] (further requests stay
//! unread), its unparsed bytes
//! by one request of the largest size, worker threads by [`ADMIN_WORKERS_MAX`].

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use rustls::{ServerConfig, ServerConnection};

use super::conn::{Conn, Slot, SlotState, READ_CHUNK_BYTES};
use super::request::{parse_request, BadRequest, Parsed, Progress};
use super::response::Response;
use super::routes::{self, Route};
use crate::api::{Backend, Consistency, KvError};
use crate::server::ServerLimits;
use crate::ticket::{Completion, Completions, Event, RequestKey};

/// How long a keep-alive connection may sit idle (or a client take to send a
/// request) before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most answers of one connection waiting to go out (a client that sends and does
/// not read); further requests wait unread.
pub const PIPELINE_MAX: usize = 64;
/// The most worker threads serving status, metrics and membership requests at once;
/// more are answered 503.
pub const ADMIN_WORKERS_MAX: usize = 64;
/// The stack size of a worker thread, in bytes.
const ADMIN_WORKER_STACK_BYTES: usize = 256 << 10;
/// Readiness events taken from one poll.
const EVENTS_PER_POLL_MAX: usize = 1024;
/// How often idle connections are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How often, at most, requests are looked at for their deadline: a request times
/// out at most this much after its request timeout.
const EXPIRY_SLACK: Duration = Duration::from_millis(100);
/// How long to wait before accepting again after `accept` failed (out of
/// descriptors, say).
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection `i` has token `FIRST_CONN + i`.
const FIRST_CONN: usize = 2;

/// A request key is `seq << INDEX_BITS | index`: the connection's index in the
/// slab, and a number no other request of this server had. An answer for a closed
/// connection whose index was reused finds no slot of that number, and is dropped.
const INDEX_BITS: u32 = 24;
/// The index part of read barriers' keys (no connection has it).
const BARRIER_INDEX: usize = (1 << INDEX_BITS) - 1;

fn key_index(key: RequestKey) -> usize {
    (key & ((1 << INDEX_BITS) - 1)) as usize
}

/// What the owner of the server tells its loop.
#[derive(Debug)]
struct Control {
    /// New connections are accepted.
    accepting: AtomicBool,
    /// The loop goes on.
    running: AtomicBool,
}

/// A running HTTP front end. Dropping it stops the loop and closes every connection.
#[derive(Debug)]
pub struct HttpServer {
    local_addr: SocketAddr,
    control: Arc<Control>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts serving `listener` from `backend` on a thread of its own, over TLS
    /// (HTTPS) when `tls` is given.
    pub fn spawn<B: Backend>(
        listener: std::net::TcpListener,
        backend: Arc<B>,
        tls: Option<Arc<ServerConfig>>,
        limits: ServerLimits,
    ) -> io::Result<HttpServer> {
        assert!(
            limits.connections_max > 0,
            "a server must accept a connection"
        );
        assert!(
            limits.connections_max < BARRIER_INDEX,
            "connection indexes must fit in a request key"
        );
        let local_addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let control = Arc::new(Control {
            accepting: AtomicBool::new(true),
            running: AtomicBool::new(true),
        });
        let (admin_tx, admin_rx) = mpsc::channel();
        let frontend = Frontend {
            request_timeout: backend.request_timeout(),
            poll,
            listener: Some(listener),
            backend,
            tls,
            limits,
            control: Arc::clone(&control),
            waker: Arc::clone(&waker),
            completions: Completions::new(Arc::clone(&waker)),
            answers: Vec::new(),
            admin_tx,
            admin_rx,
            admin_running: Arc::new(AtomicUsize::new(0)),
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            next_seq: 1,
            batch: Vec::new(),
            barriers: HashMap::new(),
            next_expiry: None,
            dirty: Vec::new(),
            accept_retry_at: None,
            scratch: vec![0; READ_CHUNK_BYTES],
        };
        let thread = std::thread::Builder::new()
            .name("http-loop".into())
            .spawn(move || frontend.run())?;
        Ok(HttpServer {
            local_addr,
            control,
            waker,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections. Those open are still served (a stopping node
    /// lets the answers of its requests in flight out) until the server is dropped.
    pub fn stop_accepting(&self) {
        self.control.accepting.store(false, Ordering::Release);
        let _ = self.waker.wake();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.control.running.store(false, Ordering::Release);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The loop's state.
struct Frontend<B> {
    poll: Poll,
    listener: Option<TcpListener>,
    backend: Arc<B>,
    tls: Option<Arc<ServerConfig>>,
    limits: ServerLimits,
    request_timeout: Duration,
    control: Arc<Control>,
    waker: Arc<Waker>,
    /// Where the backend answers writes and barriers.
    completions: Arc<Completions>,
    /// Answers taken from `completions` (kept for its capacity).
    answers: Vec<Completion>,
    /// Where worker threads answer.
    admin_tx: Sender<(RequestKey, Response)>,
    admin_rx: Receiver<(RequestKey, Response)>,
    admin_running: Arc<AtomicUsize>,
    /// The connections by index (token `FIRST_CONN + index`); `None` is free.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    next_seq: u64,
    /// This turn's linearizable reads, waiting for their barrier to be asked for.
    batch: Vec<RequestKey>,
    /// The reads each barrier in flight serves.
    barriers: HashMap<RequestKey, Vec<RequestKey>>,
    /// When to look for requests past their deadline next (`None`: none waits).
    next_expiry: Option<Instant>,
    /// Connections with something to write or to parse.
    dirty: Vec<usize>,
    /// Accept again at this time (the last accept failed).
    accept_retry_at: Option<Instant>,
    /// Where every connection's bytes are read first.
    scratch: Vec<u8>,
}

impl<B: Backend> Frontend<B> {
    fn run(mut self) {
        let mut events = Events::with_capacity(EVENTS_PER_POLL_MAX);
        let mut next_sweep = Instant::now() + SWEEP_INTERVAL;
        while self.control.running.load(Ordering::Acquire) {
            let timeout = self.poll_timeout(next_sweep);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("the HTTP front end cannot poll: {e}; it stops");
                    return;
                }
            }
            let now = Instant::now();
            if !self.control.accepting.load(Ordering::Acquire) {
                self.listener = None;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(now),
                    WAKER => {}
                    Token(token) => self.on_ready(token - FIRST_CONN, now),
                }
            }
            if self.accept_retry_at.is_some_and(|at| at <= now) {
                self.accept_all(now);
            }
            self.ask_barrier();
            self.take_answers();
            self.expire(now);
            self.flush_dirty(now);
            if now >= next_sweep {
                self.close_idle(now);
                next_sweep = now + SWEEP_INTERVAL;
            }
        }
    }

    fn poll_timeout(&self, next_sweep: Instant) -> Duration {
        if !self.dirty.is_empty() {
            return Duration::ZERO;
        }
        let mut wake_at = next_sweep;
        if let Some(at) = self.next_expiry {
            wake_at = wake_at.min(at);
        }
        if let Some(at) = self.accept_retry_at {
            wake_at = wake_at.min(at);
        }
        wake_at.saturating_duration_since(Instant::now())
    }

    fn accept_all(&mut self, now: Instant) {
        self.accept_retry_at = None;
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: try
                    // again shortly rather than spin (the next edge may not come).
                    tracing::warn!(server = "http", "accept failed: {e}");
                    self.accept_retry_at = Some(now + ACCEPT_RETRY_DELAY);
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            if self.open >= self.limits.connections_max {
                self.refuse(stream);
                continue;
            }
            if let Err(e) = self.insert(stream, now) {
                tracing::warn!(server = "http", "cannot take a connection: {e}");
            }
        }
    }

    /// Tells a client over the connection limit why it is turned away.
    fn refuse(&self, mut stream: TcpStream) {
        // An HTTPS client would not understand a plain answer; it sees the close.
        if self.tls.is_none() {
            let response = Response::text(503, "too many connections; try again later")
                .with_header("Retry-After", "1");
            let mut bytes = Vec::new();
            let _ = response.write_to(&mut bytes, false);
            let _ = stream.write(&bytes);
        }
    }

    fn insert(&mut self, mut stream: TcpStream, now: Instant) -> io::Result<()> {
        let tls = match &self.tls {
            Some(config) => {
                let mut session =
                    ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
                // Answers are bounded by PIPELINE_MAX per connection.
                session.set_buffer_limit(None);
                Some(session)
            }
            None => None,
        };
        let index = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let token = Token(FIRST_CONN + index);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
        {
            self.free.push(index);
            return Err(e);
        }
        debug_assert!(self.conns[index].is_none());
        self.conns[index] = Some(Conn::new(stream, tls, now));
        self.open += 1;
        Ok(())
    }

    fn close(&mut self, index: usize) {
        if let Some(mut conn) = self.conns[index].take() {
            conn.close();
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.free.push(index);
            self.open -= 1;
        }
    }

    /// A connection is readable or writable (or both, or closed).
    fn on_ready(&mut self, index: usize, now: Instant) {
        let Some(mut conn) = self.conns.get_mut(index).and_then(Option::take) else {
            return;
        };
        if conn.read_in(&mut self.scratch, now).is_err() {
            self.conns[index] = Some(conn);
            return self.close(index);
        }
        self.parse_requests(&mut conn, index);
        self.conns[index] = Some(conn);
        self.dirty.push(index);
    }

    /// Starts the whole requests in the connection's buffer, one at a time: the next
    /// starts once the one before it is answered, so a connection's requests take
    /// effect in the order they were sent (a pipelined GET after a PUT sees it).
    fn parse_requests(&mut self, conn: &mut Conn, index: usize) {
        while !conn.closing
            && conn.slots.len() < PIPELINE_MAX
            && conn.all_answered()
            && !conn.inbuf.is_empty()
        {
            match parse_request(&conn.inbuf) {
                Ok(Progress::Done(parsed)) => {
                    conn.inbuf.drain(..parsed.consumed);
                    // Also when the body came with the head: a client may wait for it
                    // only a while before it sends anyway.
                    if parsed.head.expects_continue() && !conn.continue_sent {
                        self.push_continue(conn, index);
                    }
                    conn.continue_sent = false;
                    self.dispatch(conn, index, parsed);
                }
                Ok(Progress::NeedMore { continue_wanted }) => {
                    if continue_wanted && !conn.continue_sent {
                        conn.continue_sent = true;
                        self.push_continue(conn, index);
                    }
                    if conn.read_closed {
                        // The rest of the request will never come.
                        conn.closing = true;
                    }
                    return;
                }
                Err(BadRequest { status, reason }) => {
                    let key = self.new_key(index);
                    let mut slot = Slot {
                        key,
                        head: None,
                        keep_alive: false,
                        state: SlotState::Admin,
                        guard: None,
                        started: Instant::now(),
                    };
                    slot.answer(&Response::text(status, reason));
                    conn.slots.push_back(slot);
                    conn.closing = true;
                    return;
                }
            }
        }
    }

    /// Queues `100 Continue` for the request being read.
    fn push_continue(&mut self, conn: &mut Conn, index: usize) {
        let key = self.new_key(index);
        conn.slots.push_back(Slot {
            key,
            head: None,
            keep_alive: true,
            state: SlotState::Ready(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
            guard: None,
            started: Instant::now(),
        });
    }

    fn new_key(&mut self, index: usize) -> RequestKey {
        debug_assert!(index <= BARRIER_INDEX);
        let key = (self.next_seq << INDEX_BITS) | index as u64;
        self.next_seq += 1;
        key
    }

    /// Starts serving one request.
    fn dispatch(&mut self, conn: &mut Conn, index: usize, parsed: Parsed) {
        let Parsed { mut head, body, .. } = parsed;
        head.secure = conn.tls.is_some();
        let keep_alive = head.keep_alive();
        conn.closing |= !keep_alive;
        let key = self.new_key(index);
        let mut slot = Slot {
            key,
            head: None,
            keep_alive,
            state: SlotState::Admin,
            guard: self.backend.begin_request(),
            started: Instant::now(),
        };
        match routes::classify(&head, &body) {
            Route::Answer(response) => slot.answer(&response),
            Route::Get {
                key: name,
                consistency: Consistency::Stale,
            } => slot.answer(&routes::read_response(
                self.backend.get(&name, Consistency::Stale),
                &head,
            )),
            Route::Get { key: name, .. } => {
                slot.state = SlotState::Read { key: name };
                self.batch.push(key);
                self.arm_expiry();
            }
            Route::Write { id, op } => {
                let id = id.unwrap_or_else(|| conn.session.next_request());
                slot.state = SlotState::Write {
                    id,
                    committed: None,
                };
                self.arm_expiry();
                // The answer comes through the completions, even when it is
                // immediate, so the slot is in place before it is looked for.
                self.backend
                    .start_write(id, op, self.completions.ticket(key));
            }
            Route::Admin => {
                if let Err(response) = self.start_admin(key, &head, body) {
                    slot.answer(&response);
                }
            }
        }
        slot.head = Some(head);
        conn.slots.push_back(slot);
    }

    /// Serves a blocking request on a worker thread, which answers through
    /// `admin_tx`; a response now if none can be started.
    fn start_admin(
        &mut self,
        key: RequestKey,
        head: &super::request::Head,
        body: Vec<u8>,
    ) -> Result<(), Response> {
        let busy = || {
            Response::text(503, "too many status or membership requests at once; retry")
                .with_header("Retry-After", "1")
        };
        if self.admin_running.fetch_add(1, Ordering::AcqRel) >= ADMIN_WORKERS_MAX {
            self.admin_running.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        let backend = Arc::clone(&self.backend);
        let head = head.clone();
        let tx = self.admin_tx.clone();
        let waker = Arc::clone(&self.waker);
        let running = Arc::clone(&self.admin_running);
        let spawned = std::thread::Builder::new()
            .name("http-admin".into())
            .stack_size(ADMIN_WORKER_STACK_BYTES)
            .spawn(move || {
                let response = routes::route_admin(&*backend, &head, &body);
                let _ = tx.send((key, response));
                running.fetch_sub(1, Ordering::AcqRel);
                let _ = waker.wake();
            });
        if let Err(e) = spawned {
            self.admin_running.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(server = "http", "cannot start a worker thread: {e}");
            return Err(busy());
        }
        Ok(())
    }

    /// Asks one barrier for this turn's linearizable reads.
    fn ask_barrier(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let key = (self.next_seq << INDEX_BITS) | BARRIER_INDEX as u64;
        self.next_seq += 1;
        self.barriers.insert(key, std::mem::take(&mut self.batch));
        self.backend
            .start_read_barrier(self.completions.ticket(key));
    }

    /// Takes the answers that came in since the last turn.
    fn take_answers(&mut self) {
        let mut answers = std::mem::take(&mut self.answers);
        self.completions.drain_into(&mut answers);
        for Completion { key, event } in answers.drain(..) {
            match event {
                Event::Barrier(result) => self.on_barrier(key, &result),
                event => self.on_write_event(key, event),
            }
        }
        self.answers = answers;
        while let Ok((key, response)) = self.admin_rx.try_recv() {
            self.answer(key, |slot| {
                matches!(slot.state, SlotState::Admin).then_some(response)
            });
        }
    }

    fn on_write_event(&mut self, key: RequestKey, event: Event) {
        match event {
            Event::Committed(index) => {
                let conn = self.conns.get_mut(key_index(key)).and_then(Option::as_mut);
                if let Some(slot) = conn.and_then(|c| c.slot_mut(key)) {
                    if let SlotState::Write { committed, .. } = &mut slot.state {
                        *committed = Some(index);
                    }
                }
            }
            Event::Written(result) => self.answer(key, |slot| match (&slot.state, &slot.head) {
                (SlotState::Write { .. }, Some(head)) => Some(routes::write_response(result, head)),
                _ => None,
            }),
            Event::Barrier(_) => debug_assert!(false, "barriers are taken apart"),
        }
    }

    /// A barrier came: its reads are answered from the local store (or all fail).
    fn on_barrier(&mut self, key: RequestKey, result: &Result<(), KvError>) {
        let Some(reads) = self.barriers.remove(&key) else {
            return;
        };
        let backend = Arc::clone(&self.backend);
        for read in reads {
            self.answer(read, |slot| match (&slot.state, &slot.head) {
                (SlotState::Read { key }, Some(head)) => {
                    let value = result
                        .clone()
                        .and_then(|()| backend.get(key, Consistency::Stale));
                    Some(routes::read_response(value, head))
                }
                _ => None,
            });
        }
    }

    /// Answers request `key` with what `respond` makes of its slot, if it is still
    /// there and `respond` says it waits for this answer (`Some`).
    fn answer(&mut self, key: RequestKey, respond: impl FnOnce(&Slot) -> Option<Response>) {
        let index = key_index(key);
        let Some(conn) = self.conns.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let Some(slot) = conn.slot_mut(key) else {
            return;
        };
        if let Some(response) = respond(slot) {
            slot.answer(&response);
            self.dirty.push(index);
        }
    }

    /// Makes sure the loop looks for timed-out requests (within
    /// [`EXPIRY_SLACK`] of their deadline).
    fn arm_expiry(&mut self) {
        if self.next_expiry.is_none() {
            self.next_expiry = Some(Instant::now() + EXPIRY_SLACK);
        }
    }

    /// Answers the requests whose time is up. Every connection has at most one
    /// request waiting for the backend (they start one at a time), so a look at
    /// every connection now and then costs less than a timer per request, and needs
    /// no queue that grows with the request rate.
    fn expire(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|at| at > now) {
            return;
        }
        self.next_expiry = None;
        let timeout = self.request_timeout;
        let mut late = Vec::new();
        for conn in self.conns.iter().flatten() {
            for slot in &conn.slots {
                let waiting =
                    matches!(slot.state, SlotState::Write { .. } | SlotState::Read { .. });
                if !waiting {
                    continue;
                }
                if now.duration_since(slot.started) >= timeout {
                    late.push(slot.key);
                } else {
                    self.next_expiry = Some(now + EXPIRY_SLACK);
                }
            }
        }
        for key in late {
            self.answer(key, |slot| {
                let error = match &slot.state {
                    SlotState::Write {
                        id,
                        committed: Some(index),
                    } => KvError::not_applied_in_time(*id, *index),
                    SlotState::Write {
                        id,
                        committed: None,
                    } => KvError::not_committed_in_time(*id, timeout),
                    SlotState::Read { .. } => KvError::Timeout {
                        what: "a linearizable read",
                        after: timeout,
                    },
                    SlotState::Ready(_) | SlotState::Admin => return None,
                };
                Some(routes::error_response(&error, slot.head.as_ref()?))
            });
        }
    }

    /// Writes out what the connections marked dirty have answered.
    fn flush_dirty(&mut self, now: Instant) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for index in dirty.drain(..) {
            self.flush(index, now);
        }
        if self.dirty.is_empty() {
            // Keep the buffer's capacity.
            self.dirty = dirty;
        }
    }

    fn flush(&mut self, index: usize, now: Instant) {
        let Some(mut conn) = self.conns.get_mut(index).and_then(Option::take) else {
            return;
        };
        let alive = self.flush_conn(&mut conn, index, now);
        self.conns[index] = Some(conn);
        if !alive {
            self.close(index);
        }
    }

    /// Writes out a connection's answers and starts the requests that waited for
    /// them; whether the connection stays open.
    fn flush_conn(&mut self, conn: &mut Conn, index: usize, now: Instant) -> bool {
        if conn.take_answers() {
            conn.closing = true;
        }
        let Ok(flushed) = conn.write_out(now) else {
            return false;
        };
        if flushed == conn.wants_writable {
            let interest = if flushed {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            let token = Token(FIRST_CONN + index);
            let registry = self.poll.registry();
            if registry
                .reregister(&mut conn.stream, token, interest)
                .is_err()
            {
                return false;
            }
            conn.wants_writable = !flushed;
        }
        // Bytes that waited for buffer space, and requests that waited for answers.
        if conn.read_paused && conn.read_in(&mut self.scratch, now).is_err() {
            return false;
        }
        let waiting = conn.slots.len();
        self.parse_requests(conn, index);
        if conn.slots.len() != waiting {
            self.dirty.push(index);
        }
        let done = conn.closing || (conn.read_closed && conn.inbuf.is_empty());
        !(done && conn.slots.is_empty() && flushed)
    }

    /// Closes connections that sat idle for [`IDLE_TIMEOUT`].
    fn close_idle(&mut self, now: Instant) {
        for index in 0..self.conns.len() {
            let idle = self.conns[index].as_ref().is_some_and(|conn| {
                conn.slots.is_empty() && now.duration_since(conn.last_active) >= IDLE_TIMEOUT
            });
            if idle {
                self.close(index);
            }
        }
    }
}
