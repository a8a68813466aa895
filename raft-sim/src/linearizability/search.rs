//! The search itself: Wing & Gong's backtracking over a linked list of call and
//! return entries, with Lowe's cache of (linearized set, model state) pairs already
//! explored (Lowe, "Testing for linearizability", 2017; Porcupine's `checkSingle`).

use std::collections::HashSet;
use std::hash::Hash;

/// A sequential specification of the object under test.
pub trait Model {
    /// The object's state. Hashed for memoization, so keep it small.
    type State: Clone + Eq + Hash;
    /// An operation's input.
    type Input;
    /// An operation's output.
    type Output;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Applies `input` to `state`. With `output` known, returns None when the model
    /// would not produce that output; with `output` None (unknown outcome), any output
    /// is accepted and only the effect matters.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// Who issued it (for reports only).
    pub client: u64,
    /// What was asked.
    pub input: I,
    /// When it was invoked (any strictly increasing logical clock).
    pub call: u64,
    /// When it returned, with what; None: the outcome is unknown (it may or may not
    /// have taken effect, at any time after `call`).
    pub ret: Option<(u64, O)>,
}

/// The verdict on one history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// A linearization exists.
    Linearizable,
    /// None exists. `blocked_op` is the operation (index into the input) that could
    /// not be placed at the deepest point the search reached, with `depth` operations
    /// linearized before it: the place to start reading the history.
    NotLinearizable {
        /// The index of the operation whose return could not be preceded by a valid
        /// linearization point.
        blocked_op: usize,
        /// How many operations the deepest partial linearization held.
        depth: usize,
    },
    /// The search gave up after `steps` steps without a verdict.
    Inconclusive {
        /// Steps taken.
        steps: u64,
    },
}

#[derive(Clone, Copy, Debug)]
struct Node {
    op: usize,
    is_call: bool,
    /// For a call: the node of its return.
    matching: usize,
    prev: usize,
    next: usize,
}

/// The sentinel head of the list; real entries start at 1.
const HEAD: usize = 0;
const NIL: usize = usize::MAX;

struct EntryList {
    nodes: Vec<Node>,
}

impl EntryList {
    /// Calls and returns in time order; unknown returns go last (time infinity).
    fn new<I, O>(ops: &[Operation<I, O>]) -> EntryList {
        // (time, is_return, op): at equal times calls go first (concurrent).
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.call, false, i));
            let ret_time = op.ret.as_ref().map_or(u64::MAX, |(t, _)| *t);
            events.push((ret_time, true, i));
        }
        events.sort_unstable();
        let mut nodes = Vec::with_capacity(events.len() + 1);
        nodes.push(Node {
            op: usize::MAX,
            is_call: false,
            matching: NIL,
            prev: NIL,
            next: NIL,
        });
        let mut call_node = vec![NIL; ops.len()];
        for (_, is_return, op) in events {
            let this = nodes.len();
            let prev = this - 1;
            nodes[prev].next = this;
            nodes.push(Node {
                op,
                is_call: !is_return,
                matching: NIL,
                prev,
                next: NIL,
            });
            if is_return {
                nodes[call_node[op]].matching = this;
            } else {
                call_node[op] = this;
            }
        }
        EntryList { nodes }
    }

    fn first(&self) -> usize {
        self.nodes[HEAD].next
    }

    fn unlink(&mut self, n: usize) {
        let Node { prev, next, .. } = self.nodes[n];
        self.nodes[prev].next = next;
        if next != NIL {
            self.nodes[next].prev = prev;
        }
    }

    fn relink(&mut self, n: usize) {
        let Node { prev, next, .. } = self.nodes[n];
        self.nodes[prev].next = n;
        if next != NIL {
            self.nodes[next].prev = n;
        }
    }

    /// Removes a call and its return (the operation is linearized).
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.nodes[call].matching);
    }

    /// Undoes `lift`, in reverse order.
    fn unlift(&mut self, call: usize) {
        self.relink(self.nodes[call].matching);
        self.relink(call);
    }
}

/// Decides whether `ops` is linearizable with respect to `model`, giving up after
/// `steps_max` search steps.
pub fn check_operations<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    steps_max: u64,
) -> CheckOutcome {
    let mut list = EntryList::new(ops);
    let words = ops.len().div_ceil(64).max(1);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut state = model.init();
    let mut entry = list.first();
    let mut deepest = (0usize, usize::MAX);
    for step in 0..steps_max {
        if entry == NIL {
            return CheckOutcome::Linearizable;
        }
        let node = list.nodes[entry];
        if !node.is_call && ops[node.op].ret.is_none() {
            // Only unknown operations remain unplaced: leaving them out is allowed.
            return CheckOutcome::Linearizable;
        }
        if node.is_call {
            let op = &ops[node.op];
            let output = op.ret.as_ref().map(|(_, o)| o);
            if let Some(next_state) = model.step(&state, &op.input, output) {
                let (word, bit) = (node.op / 64, 1u64 << (node.op % 64));
                linearized[word] |= bit;
                if cache.insert((linearized.clone(), next_state.clone())) {
                    stack.push((entry, std::mem::replace(&mut state, next_state)));
                    list.lift(entry);
                    entry = list.first();
                    continue;
                }
                linearized[word] &= !bit;
            }
            entry = node.next;
            continue;
        }
        // A return whose operation is not linearized yet: backtrack.
        if stack.len() >= deepest.0 {
            deepest = (stack.len(), node.op);
        }
        let Some((call, previous)) = stack.pop() else {
            return CheckOutcome::NotLinearizable {
                blocked_op: deepest.1,
                depth: deepest.0,
            };
        };
        let op = list.nodes[call].op;
        linearized[op / 64] &= !(1u64 << (op % 64));
        state = previous;
        list.unlift(call);
        entry = list.nodes[call].next;
        debug_assert!(step < steps_max);
    }
    CheckOutcome::Inconclusive { steps: steps_max }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register holding one integer, starting at 0.
    struct Register;

    #[derive(Debug)]
    enum RegOp {
        Write(u32),
        Read,
    }

    impl Model for Register {
        type State = u32;
        type Input = RegOp;
        type Output = u32;
        fn init(&self) -> u32 {
            0
        }
        fn step(&self, state: &u32, input: &RegOp, output: Option<&u32>) -> Option<u32> {
            match input {
                RegOp::Write(v) => Some(*v),
                RegOp::Read => match output {
                    Some(seen) if seen != state => None,
                    _ => Some(*state),
                },
            }
        }
    }

    fn op(input: RegOp, call: u64, ret: Option<(u64, u32)>) -> Operation<RegOp, u32> {
        Operation {
            client: 0,
            input,
            call,
            ret,
        }
    }

    const STEPS: u64 = 1_000_000;

    #[test]
    fn a_sequential_history_is_linearizable() {
        let ops = [
            op(RegOp::Write(1), 0, Some((1, 0))),
            op(RegOp::Read, 2, Some((3, 1))),
        ];
        assert_eq!(
            check_operations(&Register, &ops, STEPS),
            CheckOutcome::Linearizable
        );
    }

    #[test]
    fn a_stale_read_after_a_write_returned_is_not() {
        let ops = [
            op(RegOp::Write(1), 0, Some((1, 0))),
            op(RegOp::Read, 2, Some((3, 0))),
        ];
        assert_eq!(
            check_operations(&Register, &ops, STEPS),
            CheckOutcome::NotLinearizable {
                blocked_op: 1,
                depth: 1
            }
        );
    }

    #[test]
    fn a_read_concurrent_with_a_write_may_see_either_value() {
        for seen in [0, 1] {
            let ops = [
                op(RegOp::Write(1), 0, Some((3, 0))),
                op(RegOp::Read, 1, Some((2, seen))),
            ];
            assert_eq!(
                check_operations(&Register, &ops, STEPS),
                CheckOutcome::Linearizable
            );
        }
    }

    #[test]
    fn an_unknown_write_may_have_happened() {
        let ops = [
            op(RegOp::Write(7), 0, None),
            op(RegOp::Read, 5, Some((6, 7))),
        ];
        assert_eq!(
            check_operations(&Register, &ops, STEPS),
            CheckOutcome::Linearizable
        );
    }

    #[test]
    fn an_unknown_write_may_not_have_happened() {
        let ops = [
            op(RegOp::Write(7), 0, None),
            op(RegOp::Read, 5, Some((6, 0))),
        ];
        assert_eq!(
            check_operations(&Register, &ops, STEPS),
            CheckOutcome::Linearizable
        );
    }

    #[test]
    fn an_unknown_write_cannot_take_effect_before_it_was_invoked() {
        let ops = [
            op(RegOp::Read, 0, Some((1, 7))),
            op(RegOp::Write(7), 2, None),
        ];
        assert!(matches!(
            check_operations(&Register, &ops, STEPS),
            CheckOutcome::NotLinearizable { .. }
        ));
    }

    #[test]
    fn values_cannot_flip_back_and_forth() {
        // w1 and w2 overlap; two sequential reads see 2 then 1 then 2: impossible.
        let ops = [
            op(RegOp::Write(1), 0, Some((10, 0))),
            op(RegOp::Write(2), 1, Some((11, 0))),
            op(RegOp::Read, 2, Some((3, 2))),
            op(RegOp::Read, 4, Some((5, 1))),
            op(RegOp::Read, 6, Some((7, 2))),
        ];
        assert!(matches!(
            check_operations(&Register, &ops, STEPS),
            CheckOutcome::NotLinearizable { .. }
        ));
    }

    #[test]
    fn the_search_gives_up_at_its_bound() {
        let ops: Vec<_> = (0..20)
            .map(|i| op(RegOp::Write(i), 0, Some((100, 0))))
            .chain([op(RegOp::Read, 101, Some((102, 99)))])
            .collect();
        assert_eq!(
            check_operations(&Register, &ops, 50),
            CheckOutcome::Inconclusive { steps: 50 }
        );
    }

    #[test]
    fn many_concurrent_writes_are_checked_quickly_thanks_to_the_cache() {
        // 14 fully concurrent writes then a read of the one the search tries first,
        // which therefore must go last: without memoization the search walks through
        // most of 14! orders; with it, at most 2^14 * 14 states.
        let ops: Vec<_> = (0..14)
            .map(|i| op(RegOp::Write(i), 0, Some((100, 0))))
            .chain([op(RegOp::Read, 101, Some((102, 0)))])
            .collect();
        assert_eq!(
            check_operations(&Register, &ops, STEPS),
            CheckOutcome::Linearizable
        );
    }
}
