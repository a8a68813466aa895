//! Accepting connections: one thread per connection, up to a bound. The text
//! protocol is served this way; HTTP, which takes the load, has an event loop
//! ([`crate::http::server`]), where a thread per connection cost more in switches
//! and wake-ups than Raft did (see the README).
//!
//! Why threads and not a mio loop: raft-mio's client API is blocking (a proposal is
//! waited on, a read barrier is waited on), and a connection's requests are answered
//! in order, one at a time. With a thread per connection each request is a straight
//! line of code — parse, call, wait, answer — and concurrency between connections
//! comes for free; raft-mio still batches the proposals that arrive together into one
//! append and one fsync. A mio front end would need a pool of threads to wait on the
//! same blocking calls, plus per-connection state machines, for no gain at the
//! connection counts a node serves (bounded by [`ServerLimits::connections_max`], each
//! thread with a small stack).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Bounds on one front end's connections.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// The most connections served at once; more are refused with an error.
    pub connections_max: usize,
    /// The stack size of each connection thread, in bytes.
    pub thread_stack_bytes: usize,
    /// A write to a client that does not read for this long fails (and the
    /// connection closes), so a stuck client cannot hold a thread forever.
    pub write_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            connections_max: 1024,
            thread_stack_bytes: 256 << 10,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// What a front end does with a connection.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Serves the connection until the client closes it (or it fails).
    fn serve(&self, stream: TcpStream);
    /// Tells a client over the connection limit why it is turned away.
    fn refuse(&self, stream: TcpStream);
}

/// A running accept loop. Stopping it stops accepting; connections already open run
/// until their clients close them (or the process exits).
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts accepting on `listener`, serving each connection with `handler` on a
    /// thread of its own.
    pub fn spawn<H: ConnectionHandler>(
        name: &str,
        listener: TcpListener,
        handler: H,
        limits: ServerLimits,
    ) -> io::Result<Server> {
        assert!(
            limits.connections_max > 0,
            "a server must accept a connection"
        );
        let local_addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let open = Arc::new(AtomicUsize::new(0));
        let thread = {
            let stop = Arc::clone(&stop);
            let name = name.to_string();
            std::thread::Builder::new()
                .name(format!("{name}-accept"))
                .spawn(move || accept_loop(&name, listener, handler, open, stop, limits))?
        };
        Ok(Server {
            local_addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits for the accept loop to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        // accept() blocks: a connection of our own wakes it to see the flag.
        let _ = TcpStream::connect_timeout(&self.local_addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown();
        }
    }
}

/// Decrements the open-connection count when a connection thread ends, however.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn accept_loop<H: ConnectionHandler>(
    name: &str,
    listener: TcpListener,
    handler: Arc<H>,
    open: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    limits: ServerLimits,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait a
                // little rather than spin, and go on.
                tracing::warn!(server = name, "accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(limits.write_timeout));
        if open.fetch_add(1, Ordering::AcqRel) >= limits.connections_max {
            open.fetch_sub(1, Ordering::AcqRel);
            handler.refuse(stream);
            continue;
        }
        let guard = OpenGuard(Arc::clone(&open));
        let handler = Arc::clone(&handler);
        let spawned = std::thread::Builder::new()
            .name(format!("{name}-conn"))
            .stack_size(limits.thread_stack_bytes)
            .spawn(move || {
                let _guard = guard;
                handler.serve(stream);
            });
        if let Err(e) = spawned {
            // The closure (and its guard) was dropped with the error.
            tracing::warn!(server = name, "cannot start a connection thread: {e}");
        }
    }
}
