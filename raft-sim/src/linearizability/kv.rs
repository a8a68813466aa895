//! The key-value model: each key is an independent register holding an optional
//! string, so a history is checked key by key (linearizability is compositional,
//! Herlihy & Wing's locality), which keeps every search small.

use std::collections::BTreeMap;

use super::search::{check_operations, CheckOutcome, Model, Operation};

/// An operation on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvInput {
    /// Read the value.
    Get,
    /// Set the value.
    Put {
        /// The new value.
        value: String,
    },
    /// Remove the value.
    Delete,
    /// Set `new` if the value equals `expected` (None: absent / remove).
    Cas {
        /// The value required.
        expected: Option<String>,
        /// The value to store.
        new: Option<String>,
    },
}

/// What an operation on one key returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOutput {
    /// The value read.
    Get(Option<String>),
    /// The put is done.
    Put,
    /// The delete is done; whether the key existed.
    Delete {
        /// The key held a value.
        existed: bool,
    },
    /// Whether the compare-and-set swapped.
    Cas {
        /// The value matched and was replaced.
        swapped: bool,
    },
}

impl KvInput {
    /// The input of a replicated `kv_model` operation.
    pub fn from_operation(op: &kv_model::Operation) -> KvInput {
        match op {
            kv_model::Operation::Put { value, .. } => KvInput::Put {
                value: value.clone(),
            },
            kv_model::Operation::Delete { .. } => KvInput::Delete,
            kv_model::Operation::Cas { expected, new, .. } => KvInput::Cas {
                expected: expected.clone(),
                new: new.clone(),
            },
        }
    }
}

impl KvOutput {
    /// The output of a `kv_model` outcome; None for `Stale`, whose result is unknown.
    pub fn from_outcome(outcome: &kv_model::Outcome) -> Option<KvOutput> {
        match outcome {
            kv_model::Outcome::Put => Some(KvOutput::Put),
            kv_model::Outcome::Delete { existed } => Some(KvOutput::Delete { existed: *existed }),
            kv_model::Outcome::Cas { swapped } => Some(KvOutput::Cas { swapped: *swapped }),
            kv_model::Outcome::Stale => None,
        }
    }
}

/// One key as a register of `Option<String>`, starting absent.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvRegister;

impl Model for KvRegister {
    type State = Option<String>;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> Option<String> {
        None
    }

    fn step(
        &self,
        state: &Option<String>,
        input: &KvInput,
        output: Option<&KvOutput>,
    ) -> Option<Option<String>> {
        let (next, produced) = match input {
            KvInput::Get => (state.clone(), KvOutput::Get(state.clone())),
            KvInput::Put { value } => (Some(value.clone()), KvOutput::Put),
            KvInput::Delete => (
                None,
                KvOutput::Delete {
                    existed: state.is_some(),
                },
            ),
            KvInput::Cas { expected, new } => {
                let swapped = state == expected;
                let next = if swapped { new.clone() } else { state.clone() };
                (next, KvOutput::Cas { swapped })
            }
        };
        match output {
            Some(seen) if *seen != produced => None,
            _ => Some(next),
        }
    }
}

/// An operation of a key-value history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyedOperation {
    /// The key it touches.
    pub key: String,
    /// The operation.
    pub op: Operation<KvInput, KvOutput>,
}

/// The verdict for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVerdict {
    /// The key.
    pub key: String,
    /// The operations on it, in input order (indexes in `outcome` refer to these).
    pub ops: Vec<Operation<KvInput, KvOutput>>,
    /// The search's verdict.
    pub outcome: CheckOutcome,
}

/// Checks a key-value history key by key, in key order, each search bounded by
/// `steps_max` steps.
pub fn check_kv(ops: &[KeyedOperation], steps_max: u64) -> Vec<KeyVerdict> {
    let mut by_key: BTreeMap<&str, Vec<Operation<KvInput, KvOutput>>> = BTreeMap::new();
    for keyed in ops {
        by_key
            .entry(keyed.key.as_str())
            .or_default()
            .push(keyed.op.clone());
    }
    by_key
        .into_iter()
        .map(|(key, ops)| {
            let outcome = check_operations(&KvRegister, &ops, steps_max);
            KeyVerdict {
                key: key.to_string(),
                ops,
                outcome,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(key: &str, input: KvInput, call: u64, ret: Option<(u64, KvOutput)>) -> KeyedOperation {
        KeyedOperation {
            key: key.into(),
            op: Operation {
                client: 0,
                input,
                call,
                ret,
            },
        }
    }

    fn put(v: &str) -> KvInput {
        KvInput::Put { value: v.into() }
    }

    #[test]
    fn keys_are_independent() {
        let ops = [
            keyed("a", put("1"), 0, Some((1, KvOutput::Put))),
            keyed("b", KvInput::Get, 2, Some((3, KvOutput::Get(None)))),
            keyed(
                "a",
                KvInput::Get,
                4,
                Some((5, KvOutput::Get(Some("1".into())))),
            ),
        ];
        let verdicts = check_kv(&ops, 10_000);
        assert_eq!(verdicts.len(), 2);
        assert!(verdicts
            .iter()
            .all(|v| v.outcome == CheckOutcome::Linearizable));
    }

    #[test]
    fn a_lost_acknowledged_put_is_caught() {
        let ops = [
            keyed("a", put("1"), 0, Some((1, KvOutput::Put))),
            keyed("a", KvInput::Get, 2, Some((3, KvOutput::Get(None)))),
        ];
        let verdicts = check_kv(&ops, 10_000);
        assert!(matches!(
            verdicts[0].outcome,
            CheckOutcome::NotLinearizable { blocked_op: 1, .. }
        ));
    }

    #[test]
    fn cas_and_delete_results_must_match_the_state() {
        let cas = KvInput::Cas {
            expected: Some("1".into()),
            new: Some("2".into()),
        };
        let good = [
            keyed("a", put("1"), 0, Some((1, KvOutput::Put))),
            keyed(
                "a",
                cas.clone(),
                2,
                Some((3, KvOutput::Cas { swapped: true })),
            ),
            keyed(
                "a",
                KvInput::Delete,
                4,
                Some((5, KvOutput::Delete { existed: true })),
            ),
        ];
        assert_eq!(
            check_kv(&good, 10_000)[0].outcome,
            CheckOutcome::Linearizable
        );
        let bad = [
            keyed("a", put("1"), 0, Some((1, KvOutput::Put))),
            keyed("a", cas, 2, Some((3, KvOutput::Cas { swapped: false }))),
        ];
        assert!(matches!(
            check_kv(&bad, 10_000)[0].outcome,
            CheckOutcome::NotLinearizable { .. }
        ));
    }

    #[test]
    fn an_unknown_cas_explains_a_later_read() {
        let ops = [
            keyed("a", put("1"), 0, Some((1, KvOutput::Put))),
            keyed(
                "a",
                KvInput::Cas {
                    expected: Some("1".into()),
                    new: Some("2".into()),
                },
                2,
                None,
            ),
            keyed(
                "a",
                KvInput::Get,
                10,
                Some((11, KvOutput::Get(Some("2".into())))),
            ),
        ];
        assert_eq!(
            check_kv(&ops, 10_000)[0].outcome,
            CheckOutcome::Linearizable
        );
    }

    #[test]
    fn outcomes_convert_from_the_store() {
        assert_eq!(
            KvOutput::from_outcome(&kv_model::Outcome::Delete { existed: true }),
            Some(KvOutput::Delete { existed: true })
        );
        assert_eq!(KvOutput::from_outcome(&kv_model::Outcome::Stale), None);
    }
}
