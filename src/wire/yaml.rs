//! Block YAML for JSON values, for documents served as YAML (the AsyncAPI document).
//!
//! Written here rather than taken from a crate: the maintained serde YAML serializers would
//! see this crate's arbitrary-precision numbers as maps, and every string is double-quoted
//! so nothing needs YAML's implicit typing rules.

use serde_json::Value;

/// Block YAML for a JSON value. Every string (keys too) is double-quoted with escapes, so
/// nothing is read as another type (`"yes"`, `"1.0"`, `"null"`) and no character needs care.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    block(&mut out, value, 0);
    out
}

/// Writes `value` where the cursor is (after `- ` or at the indentation), at `indent`.
fn block(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    pad(out, indent);
                }
                quote(out, key);
                out.push(':');
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        out.push('\n');
                        pad(out, indent + 2);
                        block(out, item, indent + 2);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push('\n');
                        pad(out, indent + 2);
                        block(out, item, indent + 2);
                    }
                    _ => {
                        out.push(' ');
                        block(out, item, indent);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    pad(out, indent);
                }
                out.push_str("- ");
                block(out, item, indent + 2);
            }
        }
        Value::Object(_) => out.push_str("{}\n"),
        Value::Array(_) => out.push_str("[]\n"),
        Value::Null => out.push_str("null\n"),
        Value::Bool(b) => out.push_str(if *b { "true\n" } else { "false\n" }),
        Value::Number(n) => {
            out.push_str(&n.to_string());
            out.push('\n');
        }
        Value::String(s) => {
            quote(out, s);
            out.push('\n');
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A YAML double-quoted scalar. Besides `"` and `\`, escapes whatever YAML treats as a line
/// break or does not allow raw (C0/C1 controls, DEL, U+2028/9, BOM, U+FFFE/F).
fn quote(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_quotes_every_string_and_nests_blocks() {
        let v = json!({
            "a": "yes",
            "b": ["1.0", {"c": null, "d": [[], {}]}, [true, 2]],
            "e\"\u{2028}\u{85}": {"f": {}},
        });
        assert_eq!(
            to_yaml(&v),
            "\"a\": \"yes\"\n\"b\":\n  - \"1.0\"\n  - \"c\": null\n    \"d\":\n      - []\n      - {}\n\
             \x20 - - true\n    - 2\n\"e\\\"\\u2028\\u0085\":\n  \"f\": {}\n"
        );
    }
}
