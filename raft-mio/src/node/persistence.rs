//! Persistence bookkeeping of the loop: the storage and its fsync threads, the group
//! commit that starts a sync, and the `Persisted` reports that follow one.

use raft_core::Event;

use super::NodeLoop;
use crate::error::LoopError;
use crate::fsync_thread::FsyncThreads;
use crate::storage::{Storage, SyncStart};

/// Rounds of `Persisted` per turn: the actions released by one report may hold new
/// persistence (rarely); more than this waits for the next turn.
const PERSIST_ROUNDS_PER_TURN_MAX: usize = 4;

/// The node's durable state and the threads that sync it.
#[derive(Debug)]
pub(super) struct Persistence {
    pub(super) storage: Storage,
    pub(super) fsync: FsyncThreads,
}

impl NodeLoop {
    /// Steps `Persisted` for a sync the fsync thread finished.
    pub(super) fn take_finished_sync(&mut self) -> Result<(), LoopError> {
        while let Some((result, latency)) = self.persistence.fsync.try_done() {
            self.metrics.fsync_latency.observe(latency);
            let synced = result.map_err(LoopError::Storage)?;
            if let Some(through) = self.persistence.storage.end_sync(synced) {
                self.gathered
                    .other_events
                    .push(Event::Persisted { through });
            }
        }
        Ok(())
    }

    /// Starts the next group commit if none is running. Writes that are durable at
    /// once (fsync off, or hard state written synchronously) are reported at once.
    pub(super) fn group_commit(&mut self) -> Result<(), LoopError> {
        for _ in 0..PERSIST_ROUNDS_PER_TURN_MAX {
            if self.persistence.fsync.is_full() {
                return Ok(());
            }
            let start = self.persistence.storage.begin_sync();
            match start.map_err(LoopError::Storage)? {
                SyncStart::Nothing => return Ok(()),
                SyncStart::Job(job) => {
                    self.persistence
                        .fsync
                        .submit(job)
                        .map_err(LoopError::Storage)?;
                    return Ok(());
                }
                SyncStart::Durable(through) => {
                    self.core
                        .step_into(Event::Persisted { through }, &mut self.actions);
                    self.execute_actions()?;
                }
            }
        }
        Ok(())
    }

    /// Finishes the outstanding sync and makes everything written durable before the
    /// loop stops (a clean shutdown loses nothing it wrote).
    pub(super) fn finish_for_shutdown(&mut self) -> Result<(), LoopError> {
        self.persistence
            .fsync
            .wait_all()
            .map_err(LoopError::Storage)?;
        self.persistence
            .storage
            .sync()
            .map_err(LoopError::Storage)?;
        Ok(())
    }
}
