//! Property tests of the store: snapshots and duplicate suppression.

use kv_model::{ClientId, Command, KvStore, Operation, RequestSeq};
use proptest::prelude::*;

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from)
}

fn value() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec!["x", "y"]).prop_map(String::from))
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        (key(), value()).prop_map(|(key, v)| Operation::Put {
            key,
            value: v.unwrap_or_default()
        }),
        key().prop_map(|key| Operation::Delete { key }),
        (key(), value(), value()).prop_map(|(key, expected, new)| Operation::Cas {
            key,
            expected,
            new
        }),
    ]
}

/// Commands from a few clients, each numbering its requests 1, 2, 3, ...
fn commands() -> impl Strategy<Value = Vec<Command>> {
    prop::collection::vec((0u64..4, operation()), 0..60).prop_map(|ops| {
        let mut next_seq = [0u64; 4];
        ops.into_iter()
            .map(|(client, op)| {
                next_seq[client as usize] += 1;
                Command {
                    client: ClientId(client),
                    seq: RequestSeq(next_seq[client as usize]),
                    op,
                }
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn snapshot_then_restore_equals_the_original(commands in commands()) {
        let mut store = KvStore::new();
        for (i, command) in commands.iter().enumerate() {
            store.apply(i as u64 + 1, command);
        }
        let mut restored = KvStore::new();
        restored.restore(&store.snapshot()).unwrap();
        prop_assert_eq!(&restored, &store);
        prop_assert_eq!(restored.snapshot(), store.snapshot());
    }

    /// Applying every command twice in a row (a retry that also committed) gives the
    /// same state and the same outcomes as applying each once.
    #[test]
    fn duplicate_application_is_idempotent(commands in commands()) {
        let mut once = KvStore::new();
        let mut twice = KvStore::new();
        let mut index = 0;
        for (i, command) in commands.iter().enumerate() {
            let expected = once.apply(i as u64 + 1, command);
            index += 1;
            let first = twice.apply(index, command);
            index += 1;
            let retry = twice.apply(index, command);
            prop_assert_eq!(&first, &expected);
            prop_assert_eq!(&retry, &expected);
        }
        for key in ["a", "b", "c"] {
            prop_assert_eq!(once.get(key), twice.get(key));
        }
    }
}
