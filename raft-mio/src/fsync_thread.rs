//! The fsync thread: runs a node's `fdatasync`s so that the event loop goes on
//! reading messages, taking proposals and writing while the disk works.
//!
//! At most one sync is outstanding; writes made meanwhile wait for the next one, which
//! the loop starts as soon as this one reports (group commit without a timer).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::Waker;
use raft_core::PersistSeq;

use crate::storage::{StorageError, SyncJob};

/// A thread that runs sync jobs one at a time and rings the loop's waker after each.
#[derive(Debug)]
pub struct FsyncThread {
    jobs: Option<Sender<SyncJob>>,
    done: Receiver<Result<PersistSeq, StorageError>>,
    thread: Option<JoinHandle<()>>,
    busy: bool,
}

impl FsyncThread {
    /// Starts the thread.
    pub fn spawn(name: String, waker: Arc<Waker>) -> std::io::Result<FsyncThread> {
        let (jobs, job_rx) = channel::<SyncJob>();
        let (done_tx, done) = channel();
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            for job in job_rx {
                if done_tx.send(job.run()).is_err() {
                    return;
                }
                // The loop may be gone (shutting down); then no one needs waking.
                let _ = waker.wake();
            }
        })?;
        Ok(FsyncThread {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            busy: false,
        })
    }

    /// Whether a sync is outstanding.
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// Hands the thread a job; the caller must not have one outstanding.
    pub fn submit(&mut self, job: SyncJob) {
        debug_assert!(!self.busy, "one sync at a time");
        let jobs = self.jobs.as_ref().expect("the thread runs until drop");
        if let Err(unsent) = jobs.send(job) {
            // The thread died (it only does when the loop is gone); sync here instead.
            let result = unsent.0.run();
            self.busy = true;
            let (tx, rx) = channel();
            let _ = tx.send(result);
            self.done = rx;
            return;
        }
        self.busy = true;
    }

    /// The outcome of the outstanding job, if it finished.
    pub fn try_done(&mut self) -> Option<Result<PersistSeq, StorageError>> {
        if !self.busy {
            return None;
        }
        let result = self.done.try_recv().ok()?;
        self.busy = false;
        Some(result)
    }

    /// Waits for the outstanding job, if any (at shutdown).
    pub fn wait_done(&mut self) -> Option<Result<PersistSeq, StorageError>> {
        if !self.busy {
            return None;
        }
        self.busy = false;
        self.done.recv().ok()
    }
}

impl Drop for FsyncThread {
    fn drop(&mut self) {
        // Closing the job channel ends the thread after its current job.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
