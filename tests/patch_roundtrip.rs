//! Property: for any two documents, `diff(a, b)` applied to `a` gives `b`, both through our
//! `apply` and through an independent implementation (the `json-patch` crate's `patch`), and
//! `delta` chooses the smaller of patch and snapshot by their real serialized sizes. The same
//! patch with a failing op appended must leave the document exactly as it was.
//!
//! Pairs are made by mutating a random document (edits, inserts, deletes, duplicates and
//! shuffles at every level), since two unrelated documents only ever differ at the root.

use json_patch::RemoveOperation;
use json_patch::jsonptr::PointerBuf;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value};
use streamgate::patch::{Delta, PatchOperation, apply, delta, diff};
use streamgate::wire::document::Document;

const CASES: u32 = 5000;

/// Member names, including ones that need `~0`/`~1` escaping in pointers.
const KEYS: &[&str] = &[
    "a", "b", "id", "price", "a/b", "m~n", "~1", "~0/", "", "\"q\"", "0",
];

fn number() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        (-20i64..20).prop_map(|n| n.to_string()),
        "-?[1-9][0-9]{18,30}",
        "-?(0|[1-9][0-9]{0,3})\\.[0-9]{1,24}",
        "-?[1-9](\\.[0-9]{1,3})?[eE][+-]?[0-9]{1,3}",
        Just("1.0".to_owned()),
        Just("1".to_owned()),
    ];
    text.prop_map(|text| serde_json::from_str(&text).expect("valid number"))
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        "[a-c~/]{0,3}".prop_map(Value::String),
        "[ -~]{10,40}".prop_map(Value::String),
    ]
}

fn document() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 80, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|members| {
                Value::Object(
                    members
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
            // Lists of records, the shape feeds have.
            prop::collection::vec((0u8..6, leaf()), 0..12).prop_map(|items| {
                Value::Array(
                    items
                        .into_iter()
                        .map(|(id, v)| {
                            let mut record = Map::new();
                            record.insert("id".to_owned(), Value::from(id));
                            record.insert("price".to_owned(), v);
                            Value::Object(record)
                        })
                        .collect(),
                )
            }),
        ]
    })
}

/// A seeded generator, so that a case is reproducible from its seed.
struct Rng(rand::rngs::StdRng);

impl Rng {
    fn seeded(seed: u64) -> Self {
        Rng(rand::SeedableRng::seed_from_u64(seed))
    }

    fn below(&mut self, n: usize) -> usize {
        rand::Rng::random_range(&mut self.0, 0..n.max(1))
    }
}

fn mutate(value: &mut Value, rng: &mut Rng, fresh: &[Value]) {
    let pick = |rng: &mut Rng| fresh[rng.below(fresh.len())].clone();
    match value {
        Value::Array(items) => {
            for _ in 0..rng.below(4) {
                let len = items.len();
                match rng.below(7) {
                    0 => items.insert(rng.below(len + 1), pick(rng)),
                    1 if len > 0 => {
                        items.remove(rng.below(len));
                    }
                    2 if len > 0 => {
                        let copy = items[rng.below(len)].clone();
                        items.insert(rng.below(len + 1), copy);
                    }
                    3 if len > 1 => {
                        let item = items.remove(rng.below(len));
                        items.insert(rng.below(len), item);
                    }
                    4 => {
                        for i in (1..len).rev() {
                            items.swap(i, rng.below(i + 1));
                        }
                    }
                    _ if len > 0 => {
                        let at = rng.below(len);
                        mutate(&mut items[at], rng, fresh);
                    }
                    _ => {}
                }
            }
        }
        Value::Object(members) => {
            for _ in 0..rng.below(3) {
                let keys: Vec<String> = members.keys().cloned().collect();
                match rng.below(4) {
                    0 => {
                        members.insert(KEYS[rng.below(KEYS.len())].to_owned(), pick(rng));
                    }
                    1 if !keys.is_empty() => {
                        members.shift_remove(&keys[rng.below(keys.len())]);
                    }
                    _ if !keys.is_empty() => {
                        let key = &keys[rng.below(keys.len())];
                        if let Some(member) = members.get_mut(key) {
                            mutate(member, rng, fresh);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ if rng.below(3) == 0 => *value = pick(rng),
        _ => {}
    }
}

fn check(a: &Value, b: &Value) -> Result<(), TestCaseError> {
    let patch = diff(a, b);
    let text = serde_json::to_string(&patch).unwrap();
    prop_assert!(
        !patch
            .iter()
            .any(|op| matches!(op, PatchOperation::Test(_) | PatchOperation::Copy(_))),
        "test or copy op in {text}"
    );

    let mut ours = a.clone();
    let applied = apply(&mut ours, &patch);
    prop_assert!(applied.is_ok(), "apply failed: {applied:?}\npatch {text}");
    prop_assert_eq!(&ours, b, "our apply of {}", text);

    let mut theirs = a.clone();
    let applied = json_patch::patch(&mut theirs, &patch);
    prop_assert!(
        applied.is_ok(),
        "json-patch failed: {applied:?}\npatch {text}"
    );
    prop_assert_eq!(&theirs, b, "json-patch's apply of {}", text);

    // The same ops followed by one that fails: nothing may change, member order included.
    let mut failing = patch.clone();
    failing.0.push(PatchOperation::Remove(RemoveOperation {
        path: PointerBuf::parse("/\u{1}/\u{1}").unwrap(),
    }));
    let mut untouched = a.clone();
    prop_assert!(apply(&mut untouched, &failing).is_err());
    prop_assert_eq!(
        serde_json::to_string(&untouched).unwrap(),
        serde_json::to_string(a).unwrap()
    );

    let snapshot = serde_json::to_string(b).unwrap().len();
    match delta(&Document::from_value(a), &Document::from_value(b)) {
        Delta::Patch(chosen) => {
            prop_assert_eq!(&chosen, &text);
            prop_assert!(
                text.len() <= snapshot,
                "patch {} > snapshot {snapshot}",
                text.len()
            );
        }
        Delta::Snapshot => {
            prop_assert!(
                text.len() > snapshot,
                "patch {} <= snapshot {snapshot}",
                text.len()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn mutated_documents_round_trip(
        a in document(),
        fresh in prop::collection::vec(document(), 1..4),
        seed in any::<u64>(),
    ) {
        let mut b = a.clone();
        let mut rng = Rng::seeded(seed);
        for _ in 0..1 + rng.below(3) {
            mutate(&mut b, &mut rng, &fresh);
        }
        check(&a, &b)?;
        check(&b, &a)?;
    }

    #[test]
    fn unrelated_documents_round_trip(a in document(), b in document()) {
        check(&a, &b)?;
    }
}
