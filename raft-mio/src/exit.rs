//! How an application learns that its node's loop stopped, and why.
//!
//! A loop that fails (a storage error: it cannot make its state durable) stops for
//! good, and every later request answers `Shutdown`. A process that only serves
//! clients through the node would then stay up, useless, and a supervisor would never
//! restart it; [`Client::wait_stopped`](crate::Client::wait_stopped) lets it see the
//! failure and exit instead (fail-stop).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::clock;
use crate::error::LoopError;

/// Why a node's loop stopped.
#[derive(Clone, Debug)]
pub enum StopReason {
    /// Shutdown was requested ([`Client::shutdown`](crate::Client::shutdown), the last
    /// client dropped, or the loop itself dropped by the code that drove it).
    Requested,
    /// The loop failed and stopped on its own (see [`LoopError`]).
    Failed(Arc<LoopError>),
}

/// The loop's side writes the reason once; clients wait for it.
#[derive(Debug, Default)]
pub(crate) struct LoopExit {
    reason: Mutex<Option<StopReason>>,
    stopped: Condvar,
}

impl LoopExit {
    /// Records why the loop stopped (the first reason recorded wins) and wakes waiters.
    pub(crate) fn record(&self, reason: StopReason) {
        let mut guard = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(reason);
        }
        drop(guard);
        self.stopped.notify_all();
    }

    /// Whether a reason was recorded.
    pub(crate) fn is_recorded(&self) -> bool {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Waits until the loop stopped (at most `timeout`, if given); `None` if it still
    /// runs.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Option<StopReason> {
        let deadline = timeout.map(|t| clock::now() + t);
        let mut guard = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(reason) = guard.as_ref() {
                return Some(reason.clone());
            }
            guard = match deadline {
                None => self.stopped.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = clock::time_until(deadline, clock::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.stopped
                        .wait_timeout(guard, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins_and_reaches_a_waiter() {
        let exit = Arc::new(LoopExit::default());
        assert!(exit.wait(Some(Duration::from_millis(1))).is_none());
        let waiter = {
            let exit = Arc::clone(&exit);
            std::thread::spawn(move || exit.wait(None))
        };
        let failure = LoopError::Snapshot("bad".into());
        exit.record(StopReason::Failed(Arc::new(failure)));
        exit.record(StopReason::Requested);
        assert!(matches!(
            waiter.join().unwrap(),
            Some(StopReason::Failed(_))
        ));
        assert!(exit.is_recorded());
    }
}
