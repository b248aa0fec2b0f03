//! Property: on the changes a feed window goes through (items entering at the head, as many
//! leaving at the tail, counters and fields edited, items replaced or moved a few places,
//! sometimes a re-sort; and a window sliding over the twitter corpus), our patch is never
//! larger than the plain diff a simple tool sends (an LCS of equal elements, `remove` for the
//! rest of the old list and `add` for the rest of the new one), and applying it with the
//! `json-patch` crate gives the new document.
//!
//! The plain diff bounds every pairing the diff makes: an old item turned into an unrelated
//! new one by a `move` and a rewrite of its fields must not cost more than dropping the one
//! and sending the other. A `move` followed by a `replace` of the whole moved element always
//! does, so it must never appear.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, RemoveOperation};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use streamgate::patch::{Patch, PatchOperation, diff};

const CASES: u32 = 2000;

const WORDS: &[&str] = &["storm", "market", "vote", "match", "rail", "tech", "art"];
const TAGS: &[&str] = &["news", "sport", "world", "local", "live"];
const SOURCES: &[&str] = &[
    "https://feeds.example.com/world/headlines.json",
    "https://feeds.example.com/sport/results.json",
];

/// One feed item. Titles, counts and tags come from small sets, so unrelated items often
/// share a member or two, as real feeds' items do.
fn item(id: usize, (title, count, tags): (u8, u8, u8)) -> Value {
    let word = |w: u8| WORDS[usize::from(w) % WORDS.len()];
    let tags: Vec<&str> = (0..TAGS.len())
        .filter(|t| tags & (1 << t) != 0)
        .map(|t| TAGS[t])
        .collect();
    json!({
        "id": 1000 + id,
        "title": format!("{} {}", word(title), word(title / 7)),
        "count": count,
        "tags": tags,
        "source": SOURCES[usize::from(title) % SOURCES.len()],
    })
}

fn fields() -> impl Strategy<Value = (u8, u8, u8)> {
    (0u8..49, 0u8..40, 0u8..8)
}

/// An edit of one item of the new window: which item, what changes (a field, the whole item
/// for a withdrawn story, or its place), the new values.
fn edit() -> impl Strategy<Value = (prop::sample::Index, u8, (u8, u8, u8))> {
    (any::<prop::sample::Index>(), 0u8..6, fields())
}

/// The old and the new window.
fn feed() -> impl Strategy<Value = (Value, Value)> {
    (
        5usize..60,
        0usize..11,
        prop::collection::vec(fields(), 70),
        prop::collection::vec(edit(), 0..12),
        0u8..2,
    )
        .prop_map(|(len, entered, pool, edits, resort)| {
            let items: Vec<Value> = pool
                .into_iter()
                .enumerate()
                .map(|(id, f)| item(id, f))
                .collect();
            let old = items[entered..entered + len].to_vec();
            let mut new = items[..len].to_vec();
            for (n, (at, change, (title, count, tags))) in edits.into_iter().enumerate() {
                let fresh = item(100 + n, (title, count, tags));
                let at = at.index(new.len());
                let target = &mut new[at];
                match change {
                    // Counters change most.
                    0 | 1 => target["count"] = json!(count + 40),
                    2 => target["title"] = fresh["title"].clone(),
                    3 => target["tags"] = fresh["tags"].clone(),
                    4 => *target = fresh,
                    _ => {
                        let moved = new.remove(at);
                        let to = (at + usize::from(count % 5)).min(new.len());
                        new.insert(to, moved);
                    }
                }
            }
            if resort == 0 {
                new.sort_by_key(|item| std::cmp::Reverse(item["count"].as_u64()));
            }
            (json!({"items": old}), json!({"items": new}))
        })
}

/// The plain diff of two lists at `/items`: the elements of a longest common subsequence of
/// equal elements stay, every other old element is removed and every other new one added.
fn plain_diff(old: &[Value], new: &[Value]) -> Patch {
    let (n, m) = (old.len(), new.len());
    // lcs[i][j]: the length of a longest common subsequence of old[i..] and new[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let path = |at: usize| PointerBuf::parse(format!("/items/{at}")).unwrap();
    let mut ops = Vec::new();
    // `at` is where the array being patched stands: the index of old[i] and of new[j].
    let (mut i, mut j, mut at) = (0, 0, 0);
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            (i, j, at) = (i + 1, j + 1, at + 1);
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(PatchOperation::Add(AddOperation {
                path: path(at),
                value: new[j].clone(),
            }));
            (j, at) = (j + 1, at + 1);
        } else {
            ops.push(PatchOperation::Remove(RemoveOperation { path: path(at) }));
            i += 1;
        }
    }
    Patch(ops)
}

fn check(old: &Value, new: &Value) -> Result<(), TestCaseError> {
    let patch = diff(old, new);
    let text = serde_json::to_string(&patch).unwrap();

    let mut applied = old.clone();
    let result = json_patch::patch(&mut applied, &patch);
    prop_assert!(
        result.is_ok(),
        "json-patch failed: {result:?}\npatch {text}"
    );
    prop_assert_eq!(&applied, new, "json-patch's apply of {}", text);

    // A `move` whose element is then replaced whole costs more than removing the old element
    // and adding the new one, whatever the indices.
    for (op, next) in patch.iter().zip(patch.iter().skip(1)) {
        if let (PatchOperation::Move(moved), PatchOperation::Replace(replaced)) = (op, next) {
            prop_assert!(
                moved.path != replaced.path,
                "a move then a rewrite of the whole element at {}\nold {old}\nnew {new}\nours {text}",
                moved.path
            );
        }
    }

    let list = |doc: &Value| doc["items"].as_array().unwrap().clone();
    let plain = plain_diff(&list(old), &list(new));
    let mut check_plain = old.clone();
    json_patch::patch(&mut check_plain, &plain).unwrap();
    prop_assert_eq!(&check_plain, new, "the plain diff is wrong");
    let plain = serde_json::to_string(&plain).unwrap();
    prop_assert!(
        text.len() <= plain.len(),
        "ours {} > plain {}\nold {old}\nnew {new}\nours {text}\nplain {plain}",
        text.len(),
        plain.len()
    );
    Ok(())
}

/// The statuses of the twitter corpus: large objects sharing many members (users, metadata).
fn statuses() -> &'static [Value] {
    static STATUSES: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    STATUSES.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/corpus/twitter.json"
        );
        let corpus: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        corpus["statuses"].as_array().unwrap().clone()
    })
}

/// A window of statuses sliding towards newer ones, with counters changing.
fn timeline() -> impl Strategy<Value = (Value, Value)> {
    (
        10usize..50,
        0usize..6,
        any::<prop::sample::Index>(),
        prop::collection::vec(
            (any::<prop::sample::Index>(), any::<bool>(), 1u32..500),
            0..6,
        ),
    )
        .prop_map(|(len, entered, start, edits)| {
            let all = statuses();
            let start = start.index(all.len() - len - entered);
            let old = all[start + entered..start + entered + len].to_vec();
            let mut new = all[start..start + len].to_vec();
            for (at, retweet, count) in edits {
                let field = if retweet {
                    "retweet_count"
                } else {
                    "favorite_count"
                };
                at.get_mut(&mut new)[field] = json!(count);
            }
            (json!({"items": old}), json!({"items": new}))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn feed_patches_are_no_larger_than_plain_diffs((old, new) in feed()) {
        check(&old, &new)?;
        check(&new, &old)?;
    }

    #[test]
    fn timeline_patches_are_no_larger_than_plain_diffs((old, new) in timeline()) {
        check(&old, &new)?;
        check(&new, &old)?;
    }
}

/// Found by the property above: in a window shifted by two new items, three items in the
/// middle are replaced by unrelated ones while the item above them moves below them with two
/// fields changed. Pairing the moved item (a `move` and two `replace`s) used to push each
/// replaced item into a `move` followed by a rewrite of the whole item.
#[test]
fn replaced_items_crossed_by_a_moved_item_are_not_moved() {
    let padding = |i: usize| json!({"id": 5000 + i, "pad": "padding padding padding"});
    let big = "a".repeat(51);
    let mut old: Vec<Value> = (0..30).map(padding).collect();
    let mut new = vec![json!({"id": 7778, "h": 2}), json!({"id": 7777, "h": 1})];
    new.extend((0..30).map(padding));
    old.push(json!({"id": 1, "big": big, "w": ""}));
    for i in 0..3 {
        old.push(json!({"id": 100 + i, "n": ""}));
        new.push(json!({"id": 200 + i, "n": "a"}));
    }
    new.push(json!({"id": 2, "big": big, "w": "a"}));
    old.extend((30..60).map(padding));
    new.extend((30..58).map(padding));
    let (old, new) = (json!({"items": old}), json!({"items": new}));
    check(&old, &new).unwrap();
    check(&new, &old).unwrap();
}
