//! The fsync threads: they run a node's `fdatasync`s so that the event loop goes on
//! reading messages, taking proposals and writing while the disk works.
//!
//! Up to `threads` syncs are outstanding. A write made while one sync runs need not
//! wait for it to finish: the next idle thread starts a sync that covers it, so a
//! write waits about one sync instead of one and a half (measured with the bench).
//! Each `fdatasync` makes durable everything written before it started, so the
//! loop reports the highest sequence number of any finished sync, whatever order
//! they finish in.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mio::Waker;
use raft_core::PersistSeq;

use crate::clock;
use crate::storage::{StorageError, SyncJob};

/// A finished job: which worker ran it, its outcome, and how long the sync took.
type Done = (usize, Result<PersistSeq, StorageError>, Duration);

/// One worker: its job channel and thread.
#[derive(Debug)]
struct Worker {
    jobs: Option<Sender<SyncJob>>,
    thread: Option<JoinHandle<()>>,
    busy: bool,
}

/// Threads that run sync jobs and ring the loop's waker after each.
#[derive(Debug)]
pub struct FsyncThreads {
    workers: Vec<Worker>,
    done: Receiver<Done>,
}

impl FsyncThreads {
    /// Starts `threads` workers (at least one).
    pub fn spawn(name: &str, threads: usize, waker: Arc<Waker>) -> std::io::Result<FsyncThreads> {
        debug_assert!(threads > 0);
        let (done_tx, done) = channel();
        let mut workers = Vec::with_capacity(threads);
        for worker_index in 0..threads.max(1) {
            let (jobs, job_rx) = channel::<SyncJob>();
            let done_tx = done_tx.clone();
            let waker = Arc::clone(&waker);
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{worker_index}"))
                .spawn(move || {
                    for job in job_rx {
                        let started = clock::now();
                        let result = job.run();
                        let took = clock::now().saturating_duration_since(started);
                        if done_tx.send((worker_index, result, took)).is_err() {
                            return;
                        }
                        // The loop may be gone (shutting down); then no one needs waking.
                        let _ = waker.wake();
                    }
                })?;
            workers.push(Worker {
                jobs: Some(jobs),
                thread: Some(thread),
                busy: false,
            });
        }
        Ok(FsyncThreads { workers, done })
    }

    /// Whether every worker is busy.
    pub fn is_full(&self) -> bool {
        self.workers.iter().all(|w| w.busy)
    }

    /// Whether any sync is outstanding.
    pub fn is_busy(&self) -> bool {
        self.workers.iter().any(|w| w.busy)
    }

    /// Hands an idle worker a job; the caller checks [`is_full`](Self::is_full) first.
    pub fn submit(&mut self, job: SyncJob) -> Result<(), StorageError> {
        let worker = self
            .workers
            .iter_mut()
            .find(|w| !w.busy)
            .expect("an idle worker");
        match worker
            .jobs
            .as_ref()
            .expect("workers run until drop")
            .send(job)
        {
            Ok(()) => {
                worker.busy = true;
                Ok(())
            }
            // The worker died (only when the loop is going away): sync here instead.
            Err(unsent) => unsent.0.run().map(|_| ()),
        }
    }

    /// The outcome of a finished job, if any, and how long its sync took.
    pub fn try_done(&mut self) -> Option<(Result<PersistSeq, StorageError>, Duration)> {
        let (worker, result, took) = self.done.try_recv().ok()?;
        self.workers[worker].busy = false;
        Some((result, took))
    }

    /// Waits for every outstanding job (at shutdown); the first error, if any.
    pub fn wait_all(&mut self) -> Result<(), StorageError> {
        let mut first_error = Ok(());
        while self.is_busy() {
            let Ok((worker, result, _)) = self.done.recv() else {
                break;
            };
            self.workers[worker].busy = false;
            if let (Err(e), Ok(())) = (result, &first_error) {
                first_error = Err(e);
            }
        }
        first_error
    }
}

impl Drop for FsyncThreads {
    fn drop(&mut self) {
        // Closing the job channels ends the threads after their current jobs. They are
        // not joined: a clean shutdown has waited for every job already
        // (`wait_all`), and a loop that stops because its disk fails must not hang in
        // a worker stuck in `fdatasync`, or its process could not exit (fail-stop).
        for worker in &mut self.workers {
            worker.jobs.take();
            worker.thread.take();
        }
    }
}
