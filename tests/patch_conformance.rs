//! The RFC 6902 conformance suite (json-patch/json-patch-tests) through our `apply`.
//!
//! Every record that is not `disabled` runs: with `error`, applying must fail (any error
//! counts; the text is descriptive) and leave the document exactly as it was; otherwise it must
//! succeed, with the `expected` document when one is given. A patch that does not even parse
//! as RFC 6902 ops counts as a failure to apply.

use std::path::PathBuf;

use serde_json::Value;
use streamgate::patch::{Patch, apply, parse};

/// Records in the two files that are not disabled.
const ENABLED_RECORDS: usize = 108;

fn records(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/json-patch-tests")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance suite missing at {}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Array(records)) => records,
        other => panic!("{} is not a JSON array: {other:?}", path.display()),
    }
}

/// Runs one record; returns whether it was run (not disabled).
fn run(file: &str, index: usize, record: &Value) -> bool {
    if record.get("disabled") == Some(&Value::Bool(true)) {
        return false;
    }
    let label = format!(
        "{file}[{index}] {}",
        record.get("comment").and_then(Value::as_str).unwrap_or("")
    );
    let original = record["doc"].clone();
    let mut doc = original.clone();
    let result = parse(&record["patch"])
        .and_then(|patch| apply(&mut doc, &patch).map_err(|e| e.to_string()));
    if record.get("error").is_some() {
        assert!(result.is_err(), "{label}: should fail, gave {doc}");
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            serde_json::to_string(&original).unwrap(),
            "{label}: a failed patch changed the document"
        );
    } else {
        assert!(result.is_ok(), "{label}: failed: {result:?}");
        if let Some(expected) = record.get("expected") {
            assert_eq!(&doc, expected, "{label}");
        }
    }
    true
}

#[test]
fn conformance_suite_passes() {
    let mut ran = 0;
    for file in ["tests.json", "spec_tests.json"] {
        for (index, record) in records(file).iter().enumerate() {
            ran += usize::from(run(file, index, record));
        }
    }
    assert_eq!(ran, ENABLED_RECORDS, "records run");
}

/// A failing op after several successful ones (of every kind) undoes them all, order of
/// object members included.
#[test]
fn failed_patch_leaves_document_untouched() {
    let original: Value =
        serde_json::from_str(r#"{"a":1,"b":{"c":[1,2,3]},"d":"x","e":[{"f":1}]}"#).unwrap();
    let patch: Patch = serde_json::from_str(
        r#"[
            {"op":"remove","path":"/a"},
            {"op":"add","path":"/b/c/1","value":9},
            {"op":"replace","path":"/d","value":"y"},
            {"op":"move","from":"/e/0","path":"/b/g"},
            {"op":"copy","from":"/b","path":"/h"},
            {"op":"add","path":"","value":{"whole":true}},
            {"op":"move","from":"/whole","path":""},
            {"op":"remove","path":"/nowhere"}
        ]"#,
    )
    .unwrap();
    let mut doc = original.clone();
    let error = apply(&mut doc, &patch).unwrap_err();
    assert_eq!(error.op, 7);
    assert_eq!(
        serde_json::to_string(&doc).unwrap(),
        serde_json::to_string(&original).unwrap()
    );
}
