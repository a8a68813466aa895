//! The Wing & Gong / Lowe search agrees with brute force on small random histories.

use proptest::prelude::*;
use raft_sim::linearizability::kv::{KvInput, KvOutput, KvRegister};
use raft_sim::linearizability::{check_operations, CheckOutcome, Model, Operation};

type Op = Operation<KvInput, KvOutput>;

/// Tries every order (and every choice of unknown operations to leave out) that
/// respects real time: `x` may come next only if no unplaced operation with a known
/// return returned before `x` was invoked.
fn brute_force(ops: &[Op], placed: &mut Vec<bool>, state: &Option<String>) -> bool {
    let required_left = ops
        .iter()
        .zip(placed.iter())
        .any(|(op, p)| !p && op.ret.is_some());
    if !required_left {
        return true;
    }
    for x in 0..ops.len() {
        if placed[x] {
            continue;
        }
        let blocked = ops.iter().enumerate().any(|(y, op)| {
            y != x && !placed[y] && op.ret.as_ref().is_some_and(|(t, _)| *t < ops[x].call)
        });
        if blocked {
            continue;
        }
        let output = ops[x].ret.as_ref().map(|(_, o)| o);
        if let Some(next) = KvRegister.step(state, &ops[x].input, output) {
            placed[x] = true;
            let found = brute_force(ops, placed, &next);
            placed[x] = false;
            if found {
                return true;
            }
        }
    }
    false
}

fn value() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec!["1", "2"]).prop_map(String::from))
}

fn input() -> impl Strategy<Value = KvInput> {
    prop_oneof![
        Just(KvInput::Get),
        prop::sample::select(vec!["1", "2"]).prop_map(|v| KvInput::Put { value: v.into() }),
        Just(KvInput::Delete),
        (value(), value()).prop_map(|(expected, new)| KvInput::Cas { expected, new }),
    ]
}

fn output() -> impl Strategy<Value = KvOutput> {
    prop_oneof![
        value().prop_map(KvOutput::Get),
        Just(KvOutput::Put),
        any::<bool>().prop_map(|existed| KvOutput::Delete { existed }),
        any::<bool>().prop_map(|swapped| KvOutput::Cas { swapped }),
    ]
}

/// Up to 6 operations with distinct timestamps; outputs of the right kind for their
/// input most of the time, so that both verdicts occur.
fn history() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec((input(), output(), 0u64..20, 1u64..8, any::<bool>()), 1..7).prop_map(
        |raw| {
            raw.into_iter()
                .enumerate()
                .map(|(i, (input, output, start, length, unknown))| {
                    // Distinct times: scale and offset by the position.
                    let call = start * 16 + i as u64;
                    let ret_time = (start + length) * 16 + 8 + i as u64;
                    let output = match (&input, output) {
                        (KvInput::Get, o @ KvOutput::Get(_)) => o,
                        (KvInput::Get, _) => KvOutput::Get(None),
                        (KvInput::Put { .. }, _) => KvOutput::Put,
                        (KvInput::Delete, KvOutput::Delete { existed }) => {
                            KvOutput::Delete { existed }
                        }
                        (KvInput::Delete, _) => KvOutput::Delete { existed: true },
                        (KvInput::Cas { .. }, KvOutput::Cas { swapped }) => {
                            KvOutput::Cas { swapped }
                        }
                        (KvInput::Cas { .. }, _) => KvOutput::Cas { swapped: false },
                    };
                    Operation {
                        client: i as u64,
                        input,
                        call,
                        ret: if unknown {
                            None
                        } else {
                            Some((ret_time, output))
                        },
                    }
                })
                .collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]
    #[test]
    fn search_agrees_with_brute_force(ops in history()) {
        let expected = brute_force(&ops, &mut vec![false; ops.len()], &None);
        let verdict = check_operations(&KvRegister, &ops, 1_000_000);
        let inconclusive = matches!(verdict, CheckOutcome::Inconclusive { .. });
        prop_assert!(!inconclusive);
        prop_assert_eq!(verdict == CheckOutcome::Linearizable, expected, "{:?}", verdict);
    }
}
