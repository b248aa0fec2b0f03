//! A JSON document as indented lines, each with the JSON Pointer of what it shows: how the
//! screen finds the lines a patch changed.

use std::fmt::Write;

use serde_json::Value;

/// One line of the document as shown.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    /// The member or element the line belongs to (`""` for the document itself).
    pub pointer: String,
}

/// `document` as lines indented by two spaces, the way `serde_json` pretty-prints it.
pub fn lines(document: &Value) -> Vec<Line> {
    let mut lines = Vec::new();
    push(&mut lines, document, String::new(), String::new(), 0, false);
    lines
}

fn push(
    lines: &mut Vec<Line>,
    value: &Value,
    label: String,
    pointer: String,
    depth: usize,
    comma: bool,
) {
    let indent = "  ".repeat(depth);
    let end = if comma { "," } else { "" };
    let (open, close, members): (char, char, Vec<(String, String, &Value)>) = match value {
        Value::Object(map) if !map.is_empty() => (
            '{',
            '}',
            map.iter()
                .map(|(key, v)| {
                    let label = format!("{}: ", Value::String(key.clone()));
                    (label, format!("{pointer}/{}", escape(key)), v)
                })
                .collect(),
        ),
        Value::Array(items) if !items.is_empty() => (
            '[',
            ']',
            items
                .iter()
                .enumerate()
                .map(|(i, v)| (String::new(), format!("{pointer}/{i}"), v))
                .collect(),
        ),
        scalar => {
            let text = format!("{indent}{label}{scalar}{end}");
            lines.push(Line { text, pointer });
            return;
        }
    };
    let mut text = String::new();
    let _ = write!(text, "{indent}{label}{open}");
    lines.push(Line {
        text,
        pointer: pointer.clone(),
    });
    let last = members.len() - 1;
    for (i, (label, member, v)) in members.into_iter().enumerate() {
        push(lines, v, label, member, depth + 1, i < last);
    }
    lines.push(Line {
        text: format!("{indent}{close}{end}"),
        pointer,
    });
}

/// A key as a JSON Pointer token (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_read_as_serde_json_prints_and_know_their_pointer() {
        let document = json!({"a": [1, {"b/c": null}], "e": {}, "f": "x"});
        let lines = lines(&document);
        let text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        let expected = serde_json::to_string_pretty(&document).unwrap();
        assert_eq!(text.join("\n"), expected);
        let pointer = |text: &str| {
            &lines
                .iter()
                .find(|l| l.text.trim() == text)
                .unwrap()
                .pointer
        };
        assert_eq!(pointer("\"b/c\": null"), "/a/1/b~1c");
        assert_eq!(pointer("1,"), "/a/0");
        assert_eq!(pointer("\"e\": {},"), "/e");
        assert_eq!(lines[0].pointer, "");
    }
}
