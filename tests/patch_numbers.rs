//! Numbers travel digit for digit: a patch carries them as written, applying it reproduces
//! them as written, and a change in the last digit, or of spelling alone, is a change.

use serde_json::Value;
use streamgate::patch::{Patch, apply, diff};

const BIG_INT: &str = "1234567890123456789012345";
const LONG_DECIMAL: &str = "0.123456789012345678901234";
/// Unchanged content, so that resending the whole document is not the smaller patch.
const PAD: &str = "unchanged text that makes a snapshot larger than a few small replace ops";

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Diffs `old` and `new` (as text), sends the patch as text, applies it to a document parsed
/// from `old`, and returns the patch text; the result must serialize exactly as `new`.
fn round_trip(old: &str, new: &str) -> String {
    let patch_text = serde_json::to_string(&diff(&parse(old), &parse(new))).unwrap();
    let received: Patch = serde_json::from_str(&patch_text).unwrap();
    let mut doc = parse(old);
    apply(&mut doc, &received).unwrap();
    assert_eq!(
        serde_json::to_string(&doc).unwrap(),
        new,
        "patch {patch_text}"
    );

    let mut theirs = parse(old);
    json_patch::patch(&mut theirs, &received).unwrap();
    assert_eq!(
        serde_json::to_string(&theirs).unwrap(),
        new,
        "patch {patch_text}"
    );
    patch_text
}

#[test]
fn big_integers_and_long_decimals_survive_nested_arrays() {
    let old = format!(r#"{{"a":[[1,[{BIG_INT},{LONG_DECIMAL}]],"x"]}}"#);
    let new =
        format!(r#"{{"a":[[1,[{BIG_INT},{LONG_DECIMAL},{BIG_INT}1]],"y",[{LONG_DECIMAL}]]}}"#);
    let patch = round_trip(&old, &new);
    assert!(patch.contains(&format!("{BIG_INT}1")), "{patch}");
    assert!(patch.contains(LONG_DECIMAL), "{patch}");
    round_trip(&new, &old);
}

#[test]
fn last_digit_changes_are_changes() {
    let old = format!(r#"[[{BIG_INT},7],[{LONG_DECIMAL},7],"{PAD}"]"#);
    let big = format!("{}6", &BIG_INT[..BIG_INT.len() - 1]);
    let long = format!("{}5", &LONG_DECIMAL[..LONG_DECIMAL.len() - 1]);
    let new = format!(r#"[[{big},7],[{long},7],"{PAD}"]"#);
    let patch = round_trip(&old, &new);
    assert_eq!(
        patch,
        format!(
            r#"[{{"op":"replace","path":"/0/0","value":{big}}},{{"op":"replace","path":"/1/0","value":{long}}}]"#
        )
    );
}

#[test]
fn elements_with_exact_numbers_move_intact() {
    let item = |n: usize| format!(r#"{{"id":{BIG_INT}{n},"v":{LONG_DECIMAL}{n}}}"#);
    let old = format!("[{}]", (0..8).map(item).collect::<Vec<_>>().join(","));
    let order = [0, 5, 1, 2, 3, 4, 6, 7];
    let new = format!("[{}]", order.map(item).join(","));
    let patch = round_trip(&old, &new);
    assert_eq!(patch, r#"[{"op":"move","from":"/5","path":"/1"}]"#);
}

/// `1.0` and `1` are different texts, hence different values to the diff: the client gets
/// the new spelling.
#[test]
fn spelling_changes_are_sent() {
    let patch = round_trip(
        &format!(r#"{{"p":1,"q":1e2,"pad":"{PAD}"}}"#),
        &format!(r#"{{"p":1.0,"q":100,"pad":"{PAD}"}}"#),
    );
    assert_eq!(
        patch,
        r#"[{"op":"replace","path":"/p","value":1.0},{"op":"replace","path":"/q","value":100}]"#
    );
}
