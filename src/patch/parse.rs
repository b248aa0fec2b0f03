//! A patch's JSON form, read and written.
//!
//! Built by hand rather than through `serde`: `json-patch`'s operations are an internally
//! tagged enum, and serde buffers such enums in a form that cannot hold arbitrary-precision
//! numbers, so a 30-digit integer in a `value` would be refused; and `serde_json::to_value`
//! respells numbers (`1E5` becomes `1e+5`), where a patch must carry them as the document has
//! them.

use json_patch::jsonptr::PointerBuf;
use json_patch::{
    AddOperation, CopyOperation, MoveOperation, Patch, PatchOperation, RemoveOperation,
    ReplaceOperation, TestOperation,
};
use serde_json::Value;

/// Reads an array of RFC 6902 operations (a received `patch` event, say). The error names
/// the operation and what is wrong with it.
pub fn parse(ops: &Value) -> Result<Patch, String> {
    let ops = ops
        .as_array()
        .ok_or("not an RFC 6902 patch: a patch is a JSON array of operations")?;
    ops.iter()
        .enumerate()
        .map(|(i, op)| operation(op).map_err(|e| format!("operation {i}: {e}")))
        .collect::<Result<_, _>>()
        .map(Patch)
}

fn operation(op: &Value) -> Result<PatchOperation, String> {
    let pointer = |member: &str| -> Result<PointerBuf, String> {
        let text = op
            .get(member)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("\"{member}\" is missing or not a string"))?;
        PointerBuf::parse(text).map_err(|e| format!("\"{member}\" is not a JSON Pointer: {e}"))
    };
    let value = || {
        op.get("value")
            .cloned()
            .ok_or_else(|| "\"value\" is missing".to_owned())
    };
    let path = pointer("path")?;
    Ok(match op.get("op").and_then(Value::as_str) {
        Some("add") => PatchOperation::Add(AddOperation {
            path,
            value: value()?,
        }),
        Some("remove") => PatchOperation::Remove(RemoveOperation { path }),
        Some("replace") => PatchOperation::Replace(ReplaceOperation {
            path,
            value: value()?,
        }),
        Some("move") => PatchOperation::Move(MoveOperation {
            from: pointer("from")?,
            path,
        }),
        Some("copy") => PatchOperation::Copy(CopyOperation {
            from: pointer("from")?,
            path,
        }),
        Some("test") => PatchOperation::Test(TestOperation {
            path,
            value: value()?,
        }),
        Some(other) => return Err(format!("unknown op {other:?}")),
        None => return Err("\"op\" is missing or not a string".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_writes_back_as_it_was_read() {
        let text = r#"[{"op":"add","path":"/a~1b","value":[1E5,-0,1e400]},{"op":"remove","path":"/r"},{"op":"replace","path":"/0","value":{"x":2.50E-3}},{"op":"move","from":"/f~0","path":"/m"},{"op":"copy","from":"/d","path":"/c"},{"op":"test","path":"","value":null}]"#;
        let read = parse(&crate::wire::json::parse(text.as_bytes()).unwrap()).unwrap();
        assert_eq!(serde_json::to_string(&read).unwrap(), text);
    }

    #[test]
    fn big_numbers_and_every_op_parse() {
        let text = r#"[
            {"op": "add", "path": "/a", "value": 123456789012345678901234567890},
            {"op": "replace", "path": "/b", "value": 0.100000000000000000000001},
            {"op": "remove", "path": "/c"},
            {"op": "move", "from": "/d", "path": "/e"},
            {"op": "copy", "from": "/e", "path": "/f"},
            {"op": "test", "path": "/f", "value": null}
        ]"#;
        let ops: Value = serde_json::from_str(text).unwrap();
        let patch = parse(&ops).unwrap();
        assert_eq!(patch.0.len(), 6);
        // The numbers come back digit for digit.
        let back = serde_json::to_string(&patch).unwrap();
        assert!(back.contains("123456789012345678901234567890"), "{back}");
        assert!(back.contains("0.100000000000000000000001"), "{back}");
    }

    #[test]
    fn malformed_patches_say_what_is_wrong() {
        for (text, needle) in [
            (r#"{"op": "add"}"#, "array"),
            (r#"[{"path": "/a"}]"#, "\"op\""),
            (r#"[{"op": "add", "path": "/a"}]"#, "\"value\""),
            (r#"[{"op": "jump", "path": "/a"}]"#, "unknown op"),
            (r#"[{"op": "move", "path": "/a"}]"#, "\"from\""),
            (r#"[{"op": "remove", "path": "a"}]"#, "JSON Pointer"),
        ] {
            let err = parse(&serde_json::from_str(text).unwrap()).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
