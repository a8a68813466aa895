//! A one-shot reply slot between the loop and a client thread: the loop fills it once,
//! the client waits on it (blocking, with or without a timeout) or polls it. A reply
//! may instead be a callback ([`callback`]) that the loop calls with the answer, for
//! applications that run their own event loop and must not block a thread per
//! request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock;

#[derive(Debug)]
enum State<T> {
    Waiting,
    Ready(T),
    Taken,
    /// The loop dropped its side without answering (it shut down).
    Abandoned,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<Slot<T>>,
    ready: Condvar,
    /// Set once the state left `Waiting`, so that polling ([`Pending::is_done`])
    /// reads a flag instead of taking the lock: a client polling a thousand
    /// proposals took each one's lock just as the loop did to fill it, and the
    /// lock's cache line went back and forth between the two threads (the loop's
    /// `Reply::send` was 12% of a leader's samples at 1024 proposals in flight).
    done: AtomicBool,
}

/// The state and whether a thread sleeps on the condvar: most answers arrive before
/// anyone waits (many proposals in flight), and skipping the notify then saves a
/// futex syscall per answer on the event loop.
#[derive(Debug)]
struct Slot<T> {
    state: State<T>,
    sleepers: u32,
}

/// The client's side: wait for the answer.
#[derive(Debug)]
pub struct Pending<T> {
    shared: Arc<Shared<T>>,
}

/// The loop's side: answer once.
pub struct Reply<T> {
    target: Option<Target<T>>,
}

/// Where an answer goes.
enum Target<T> {
    /// A slot a client thread waits on.
    Slot(Arc<Shared<T>>),
    /// A function called with the answer, or with `None` if the loop drops the
    /// reply without answering (it shut down).
    Callback(Box<dyn FnOnce(Option<T>) + Send>),
}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            None => "answered",
            Some(Target::Slot(_)) => "slot",
            Some(Target::Callback(_)) => "callback",
        };
        f.debug_struct("Reply").field("target", &target).finish()
    }
}

/// A reply that calls `f` with the answer (on the loop's thread), or with `None` if
/// the loop stops without answering. `f` runs exactly once.
pub fn callback<T>(f: impl FnOnce(Option<T>) + Send + 'static) -> Reply<T> {
    Reply {
        target: Some(Target::Callback(Box::new(f))),
    }
}

/// A fresh slot.
pub fn slot<T>() -> (Reply<T>, Pending<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(Slot {
            state: State::Waiting,
            sleepers: 0,
        }),
        ready: Condvar::new(),
        done: AtomicBool::new(false),
    });
    (
        Reply {
            target: Some(Target::Slot(Arc::clone(&shared))),
        },
        Pending { shared },
    )
}

impl<T> Reply<T> {
    /// Delivers the answer and wakes the waiter.
    pub fn send(mut self, value: T) {
        self.finish(State::Ready(value));
    }

    fn finish(&mut self, state: State<T>) {
        match self.target.take() {
            None => {}
            Some(Target::Slot(shared)) => fill(&shared, state),
            Some(Target::Callback(f)) => match state {
                State::Ready(value) => f(Some(value)),
                _ => f(None),
            },
        }
    }
}

/// Fills a slot and wakes its waiter, if one sleeps.
fn fill<T>(shared: &Shared<T>, state: State<T>) {
    let mut guard = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    debug_assert!(matches!(guard.state, State::Waiting));
    guard.state = state;
    let sleepers = guard.sleepers;
    drop(guard);
    shared.done.store(true, Ordering::Release);
    if sleepers > 0 {
        shared.ready.notify_all();
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        self.finish(State::Abandoned);
    }
}

/// Why no answer came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The loop stopped without answering.
    Abandoned,
    /// The timeout passed first (the answer may still come).
    Timeout,
    /// The answer was already taken.
    AlreadyTaken,
}

impl<T> Pending<T> {
    /// Blocks until the answer comes.
    pub fn wait(&self) -> Result<T, WaitError> {
        let mut guard = self.lock();
        while matches!(guard.state, State::Waiting) {
            guard.sleepers += 1;
            guard = self
                .shared
                .ready
                .wait(guard)
                .unwrap_or_else(|e| e.into_inner());
            guard.sleepers -= 1;
        }
        take(&mut guard.state)
    }

    /// Blocks until the answer comes or `timeout` passes.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<T, WaitError> {
        let deadline = clock::now() + timeout;
        let mut guard = self.lock();
        while matches!(guard.state, State::Waiting) {
            let left = clock::time_until(deadline, clock::now());
            if left.is_zero() {
                break;
            }
            guard.sleepers += 1;
            guard = self
                .shared
                .ready
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            guard.sleepers -= 1;
        }
        take(&mut guard.state)
    }

    /// The answer if it is there, without blocking.
    pub fn try_take(&self) -> Result<T, WaitError> {
        take(&mut self.lock().state)
    }

    /// Whether the answer is there (or will never come).
    pub fn is_done(&self) -> bool {
        self.shared.done.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn take<T>(state: &mut State<T>) -> Result<T, WaitError> {
    match std::mem::replace(state, State::Taken) {
        State::Ready(value) => Ok(value),
        State::Waiting => {
            *state = State::Waiting;
            Err(WaitError::Timeout)
        }
        State::Taken => Err(WaitError::AlreadyTaken),
        State::Abandoned => {
            *state = State::Abandoned;
            Err(WaitError::Abandoned)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reaches_a_waiting_thread() {
        let (reply, pending) = slot();
        assert!(!pending.is_done());
        let waiter = std::thread::spawn(move || {
            let answer = pending.wait();
            assert!(pending.is_done());
            answer
        });
        reply.send(5);
        assert_eq!(waiter.join().unwrap(), Ok(5));
    }

    #[test]
    fn a_callback_hears_the_answer_or_that_none_will_come() {
        let (tx, rx) = std::sync::mpsc::channel();
        let answered = {
            let tx = tx.clone();
            callback(move |v: Option<u32>| tx.send(v).unwrap())
        };
        answered.send(7);
        drop(callback(move |v: Option<u32>| tx.send(v).unwrap()));
        assert_eq!(rx.recv().unwrap(), Some(7));
        assert_eq!(rx.recv().unwrap(), None, "a dropped reply calls with None");
        assert!(rx.try_recv().is_err(), "each callback ran once");
    }

    #[test]
    fn a_dropped_reply_abandons_the_wait() {
        let (reply, pending) = slot::<u32>();
        assert_eq!(pending.try_take(), Err(WaitError::Timeout));
        assert!(!pending.is_done());
        drop(reply);
        assert!(
            pending.is_done(),
            "an abandoned slot will never be answered"
        );
        assert_eq!(pending.wait(), Err(WaitError::Abandoned));
        assert_eq!(
            pending.wait_timeout(Duration::from_millis(1)),
            Err(WaitError::Abandoned)
        );
    }
}
