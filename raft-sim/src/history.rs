//! The clients' history: every invocation and its outcome, in the order the
//! simulation saw them, ready for the linearizability checker.

use crate::linearizability::kv::{KeyedOperation, KvInput, KvOutput};
use crate::linearizability::Operation;
use crate::time::SimTime;

/// An operation's index in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub usize);

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpStatus {
    /// Still running.
    Pending,
    /// The client heard back.
    Ok(KvOutput),
    /// Definitely had no effect (every attempt was refused).
    Failed,
    /// The client gave up without knowing whether it took effect.
    Unknown,
}

/// One operation as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The client that ran it.
    pub client: u64,
    /// The key it touched.
    pub key: String,
    /// What was asked.
    pub input: KvInput,
    /// The history clock at invocation.
    pub call: u64,
    /// The history clock at completion (for every status but `Pending`).
    pub ret: Option<u64>,
    /// Virtual time of invocation and completion, for reports.
    pub called_at: SimTime,
    /// Virtual time of completion.
    pub returned_at: Option<SimTime>,
    /// How it ended.
    pub status: OpStatus,
}

/// Counts of operations by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryCounts {
    /// Reads that returned.
    pub reads_ok: u64,
    /// Writes (put, delete, cas) that returned.
    pub writes_ok: u64,
    /// Operations that definitely failed.
    pub failed: u64,
    /// Operations whose outcome is unknown (pending at the end included).
    pub unknown: u64,
}

/// The recorded history of a run.
#[derive(Clone, Debug, Default)]
pub struct History {
    ops: Vec<Recorded>,
    /// Operations completed since the last `take_completed`.
    completed: Vec<OpId>,
    /// A logical clock that orders invocations and completions strictly.
    clock: u64,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Records an invocation.
    pub fn invoke(&mut self, client: u64, key: &str, input: KvInput, now: SimTime) -> OpId {
        let call = self.tick();
        self.ops.push(Recorded {
            client,
            key: key.to_string(),
            input,
            call,
            ret: None,
            called_at: now,
            returned_at: None,
            status: OpStatus::Pending,
        });
        OpId(self.ops.len() - 1)
    }

    /// Records how operation `id` ended (once).
    pub fn complete(&mut self, id: OpId, status: OpStatus, now: SimTime) {
        assert!(status != OpStatus::Pending, "complete with a final status");
        let ret = self.tick();
        let op = &mut self.ops[id.0];
        assert_eq!(
            op.status,
            OpStatus::Pending,
            "operation {id:?} completed twice"
        );
        op.ret = Some(ret);
        op.returned_at = Some(now);
        op.status = status;
        self.completed.push(id);
    }

    /// The operations completed since the last call, in completion order.
    pub fn take_completed(&mut self) -> Vec<OpId> {
        std::mem::take(&mut self.completed)
    }

    /// Every operation recorded.
    pub fn ops(&self) -> &[Recorded] {
        &self.ops
    }

    /// One operation.
    pub fn op(&self, id: OpId) -> &Recorded {
        &self.ops[id.0]
    }

    /// Counts by outcome.
    pub fn counts(&self) -> HistoryCounts {
        let mut counts = HistoryCounts::default();
        for op in &self.ops {
            match (&op.status, &op.input) {
                (OpStatus::Ok(_), KvInput::Get) => counts.reads_ok += 1,
                (OpStatus::Ok(_), _) => counts.writes_ok += 1,
                (OpStatus::Failed, _) => counts.failed += 1,
                (OpStatus::Unknown | OpStatus::Pending, _) => counts.unknown += 1,
            }
        }
        counts
    }

    /// The history as the checker takes it: failed operations left out, unknown and
    /// still pending ones without a return. Reads whose outcome is unknown are left
    /// out too: a read changes nothing, so one nobody heard the answer to constrains
    /// nothing, while every operation without a return widens the search.
    pub fn to_keyed_operations(&self) -> Vec<KeyedOperation> {
        self.ops
            .iter()
            .filter_map(|op| {
                let ret = match (&op.status, &op.input) {
                    (OpStatus::Failed, _) => return None,
                    (OpStatus::Unknown | OpStatus::Pending, KvInput::Get) => return None,
                    (OpStatus::Ok(output), _) => Some((op.ret.expect("completed"), output.clone())),
                    (OpStatus::Unknown | OpStatus::Pending, _) => None,
                };
                Some(KeyedOperation {
                    key: op.key.clone(),
                    op: Operation {
                        client: op.client,
                        input: op.input.clone(),
                        call: op.call,
                        ret,
                    },
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_operations_are_left_out_and_unknown_ones_have_no_return() {
        let mut h = History::new();
        let a = h.invoke(1, "k", KvInput::Get, SimTime(1));
        let b = h.invoke(2, "k", KvInput::Delete, SimTime(2));
        let c = h.invoke(3, "k", KvInput::Delete, SimTime(3));
        let d = h.invoke(4, "k", KvInput::Get, SimTime(3));
        h.complete(a, OpStatus::Ok(KvOutput::Get(None)), SimTime(4));
        h.complete(b, OpStatus::Failed, SimTime(5));
        h.complete(c, OpStatus::Unknown, SimTime(6));
        h.complete(d, OpStatus::Unknown, SimTime(7));
        let ops = h.to_keyed_operations();
        assert_eq!(
            ops.len(),
            2,
            "the failed delete and the unknown read are left out"
        );
        assert_eq!(ops[0].op.ret, Some((5, KvOutput::Get(None))));
        assert_eq!(ops[1].op.ret, None);
        let counts = h.counts();
        assert_eq!((counts.reads_ok, counts.failed, counts.unknown), (1, 1, 2));
    }

    #[test]
    #[should_panic(expected = "completed twice")]
    fn an_operation_completes_once() {
        let mut h = History::new();
        let a = h.invoke(1, "k", KvInput::Get, SimTime(1));
        h.complete(a, OpStatus::Failed, SimTime(2));
        h.complete(a, OpStatus::Failed, SimTime(3));
    }
}
