//! The shapes of patches for the changes feeds make: each must be the few ops a person would
//! write, whatever the size of the document.

use serde_json::{Value, json};
use streamgate::patch::{Delta, MAX_DEPTH, Patch, apply, diff};
use streamgate::wire::document::Document;

fn items(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"id": i, "title": format!("item {i}"), "price": i * 3}))
        .collect()
}

/// Diffs, checks the patch applies to give `new`, and returns it as JSON.
fn ops(old: &Value, new: &Value) -> Value {
    let patch = diff(old, new);
    let mut doc = old.clone();
    apply(&mut doc, &patch).expect("the patch applies");
    assert_eq!(&doc, new);
    serde_json::to_value(&patch).unwrap()
}

#[test]
fn insert_at_head_of_long_list_is_one_add() {
    let old = json!({"items": items(5000)});
    let mut list = items(5000);
    list.insert(0, json!({"id": -1}));
    let new = json!({"items": list});
    assert_eq!(
        ops(&old, &new),
        json!([{"op": "add", "path": "/items/0", "value": {"id": -1}}])
    );
}

#[test]
fn removal_from_long_list_is_one_remove() {
    let old = json!(items(5000));
    let mut list = items(5000);
    list.remove(2500);
    assert_eq!(
        ops(&old, &json!(list)),
        json!([{"op": "remove", "path": "/2500"}])
    );
}

#[test]
fn feed_window_adds_at_head_and_drops_at_tail() {
    let all = items(60);
    let old = json!(all[10..60].to_vec());
    let new = json!(all[7..57].to_vec());
    let patch = ops(&old, &new);
    let kinds: Vec<&str> = patch
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["op"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["add", "add", "add", "remove", "remove", "remove"]);
}

#[test]
fn moved_item_is_one_move() {
    let old = json!({"items": items(20)});
    let mut list = items(20);
    let item = list.remove(7);
    list.insert(2, item);
    assert_eq!(
        ops(&old, &json!({"items": list})),
        json!([{"op": "move", "from": "/items/7", "path": "/items/2"}])
    );
}

#[test]
fn moved_item_forward_is_one_move() {
    let old = json!(items(20));
    let mut list = items(20);
    let item = list.remove(2);
    list.insert(15, item);
    assert_eq!(
        ops(&old, &json!(list)),
        json!([{"op": "move", "from": "/2", "path": "/15"}])
    );
}

#[test]
fn changed_field_of_list_item_is_one_replace() {
    let old = json!({"items": items(500)});
    let mut list = items(500);
    list[3]["price"] = json!(1234);
    assert_eq!(
        ops(&old, &json!({"items": list})),
        json!([{"op": "replace", "path": "/items/3/price", "value": 1234}])
    );
}

#[test]
fn moved_and_changed_object_is_a_move_and_an_edit() {
    let big = |i: usize, price: usize| json!({"id": i, "price": price, "description": format!("a long description of item {i}, long enough that resending it costs more than a move")});
    let old: Vec<Value> = (0..10).map(|i| big(i, i)).collect();
    let mut new = old.clone();
    new.remove(8);
    new.insert(1, big(8, 99));
    assert_eq!(
        ops(&json!(old), &json!(new)),
        json!([
            {"op": "move", "from": "/8", "path": "/1"},
            {"op": "replace", "path": "/1/price", "value": 99}
        ])
    );
}

#[test]
fn reversed_list_is_all_moves() {
    let old = json!(items(6));
    let mut list = items(6);
    list.reverse();
    let patch = ops(&old, &json!(list));
    let ops = patch.as_array().unwrap();
    assert_eq!(ops.len(), 5);
    assert!(ops.iter().all(|op| op["op"] == "move"), "{patch}");
}

#[test]
fn list_changed_everywhere_is_replaced_whole() {
    let old = json!({"list": [1, 2, 3, 4, 5, 6]});
    let new = json!({"list": [7, 8, 9, 10, 11, 12]});
    assert_eq!(
        ops(&old, &new),
        json!([{"op": "replace", "path": "/list", "value": [7, 8, 9, 10, 11, 12]}])
    );
}

#[test]
fn keys_are_escaped_in_paths() {
    let text = "unchanged text that makes replacing the whole object costlier, ".repeat(4);
    let old = json!({"a/b": {"m~n": 1, "t": text}, "": {"": 1, "t": text}});
    let new = json!({"a/b": {"m~n": 2, "t": text}, "": {"": 2, "t": text}});
    assert_eq!(
        ops(&old, &new),
        json!([
            {"op": "replace", "path": "/a~1b/m~0n", "value": 2},
            {"op": "replace", "path": "//", "value": 2}
        ])
    );
}

#[test]
fn object_ops_follow_key_order() {
    let text = "unchanged text that makes replacing the whole object costlier, ".repeat(4);
    let old = json!({"z": 1, "y": 1, "x": 1, "w": 1, "t": text});
    let new = json!({"x": 2, "v": 1, "z": 1, "u": 1, "t": text});
    assert_eq!(
        ops(&old, &new),
        json!([
            {"op": "remove", "path": "/y"},
            {"op": "remove", "path": "/w"},
            {"op": "replace", "path": "/x", "value": 2},
            {"op": "add", "path": "/v", "value": 1},
            {"op": "add", "path": "/u", "value": 1}
        ])
    );
}

#[test]
fn reordered_members_are_no_change() {
    let old: Value = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
    let new: Value = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap();
    assert_eq!(diff(&old, &new), Patch::default());
}

fn delta(old: &Value, new: &Value) -> Delta {
    streamgate::patch::delta(&Document::from_value(old), &Document::from_value(new))
}

fn ops_in(text: &str) -> usize {
    serde_json::from_str::<Vec<Value>>(text).unwrap().len()
}

#[test]
fn delta_picks_the_smaller() {
    let old = json!({"items": items(100)});
    let mut list = items(100);
    list[50]["title"] = json!("renamed");
    match delta(&old, &json!({"items": list})) {
        Delta::Patch(text) => assert_eq!(ops_in(&text), 1),
        Delta::Snapshot => panic!("a one-field change should be a patch"),
    }
    assert!(matches!(
        delta(&json!([1, 2]), &json!({"x": 1})),
        Delta::Snapshot
    ));
    match delta(&old, &old) {
        Delta::Patch(text) => assert_eq!(text, "[]"),
        Delta::Snapshot => panic!("no change should be an empty patch"),
    }
}

/// Documents as deep as the parser allows diff structurally, on a test thread's 2 MiB stack;
/// deeper ones are replaced below the depth limit.
#[test]
fn deep_documents_do_not_overflow() {
    fn nest(depth: usize, leaf: Value) -> Value {
        (0..depth).fold(leaf, |inner, i| {
            if i % 2 == 0 {
                json!([0, inner])
            } else {
                json!({"k": inner})
            }
        })
    }
    let old = nest(MAX_DEPTH, json!(1));
    let new = nest(MAX_DEPTH, json!(2));
    let patch = ops(&old, &new);
    assert_eq!(patch.as_array().unwrap().len(), 1);
    assert_eq!(patch[0]["op"], "replace");
    assert_eq!(patch[0]["value"], json!(2));

    let old = nest(MAX_DEPTH + 50, json!(1));
    let new = nest(MAX_DEPTH + 50, json!(2));
    let patch = ops(&old, &new);
    assert_eq!(patch.as_array().unwrap().len(), 1);
}

/// A big first element does not size the work done on the others (the member index of the
/// elements left to pair was once sized by the first one's members times their number).
#[test]
fn a_big_first_element_does_not_size_the_work_on_the_others() {
    let big: serde_json::Map<String, Value> =
        (0..10_000).map(|i| (format!("k{i}"), json!(0))).collect();
    let mut old = vec![Value::Object(big)];
    old.extend((0..100_000).map(|i| json!(i)));
    let (old, new) = (Value::from(old), json!([1]));
    let patch = diff(&old, &new);
    let mut applied = old.clone();
    apply(&mut applied, &patch).unwrap();
    assert_eq!(applied, new);
}
