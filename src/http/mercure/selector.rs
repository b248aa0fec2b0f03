//! Mercure topic selectors: `*`, an exact topic, or an RFC 6570 URI template a topic may
//! match.
//!
//! A template becomes a regular expression once, when the selector is read: each expression
//! matches what its operator could have expanded to (a simple `{var}` no reserved character,
//! `{+var}` and `{#var}` any, `{/var}` a path segment after a `/`, and so on), so matching a
//! topic is one regex run, after a check of the template's literal start (most templates a
//! topic does not match differ there, and a comparison of bytes is far cheaper).
//!
//! Subscribers often share a template (every page of a kind subscribes to the same one):
//! templates are interned, and each remembers its answer for the last topic it was asked
//! about, so an update is matched against each distinct template once, however many
//! subscribers hold it (they check it one after the other as the update wakes them).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use regex::Regex;

/// One selector, ready to match topics.
#[derive(Debug, Clone)]
pub enum Selector {
    /// `*`: every topic.
    All,
    Exact(String),
    Template(Arc<Template>),
}

/// A compiled URI template, shared by the selectors that name it.
#[derive(Debug)]
pub struct Template {
    /// The text before the first expression: every match starts with it.
    prefix: String,
    regex: Regex,
    /// The last topic asked about, and the answer.
    last: Mutex<(String, bool)>,
}

impl Template {
    fn matches(&self, topic: &str) -> bool {
        if !topic.starts_with(self.prefix.as_str()) {
            return false;
        }
        let mut last = self.last.lock().unwrap();
        if last.0 != topic {
            *last = (topic.to_owned(), self.regex.is_match(topic));
        }
        last.1
    }
}

/// The templates in use, by text.
static TEMPLATES: LazyLock<Mutex<HashMap<String, Weak<Template>>>> =
    LazyLock::new(Default::default);

/// The template `text` names, shared with every selector naming it; `None` when it is not
/// one.
fn interned(text: &str, brace: usize) -> Option<Arc<Template>> {
    let known = TEMPLATES.lock().unwrap().get(text).and_then(Weak::upgrade);
    if known.is_some() {
        return known;
    }
    // Compiled outside the lock: a long template takes a while, and nobody waits for it.
    let template = Arc::new(Template {
        prefix: text[..brace].to_owned(),
        regex: template(text)?,
        last: Mutex::default(),
    });
    let mut templates = TEMPLATES.lock().unwrap();
    if let Some(raced) = templates.get(text).and_then(Weak::upgrade) {
        return Some(raced);
    }
    // Templates no selector holds any more leave as the map doubles.
    if templates.len() >= 1024 && templates.len().is_power_of_two() {
        templates.retain(|_, t| t.strong_count() > 0);
    }
    templates.insert(text.to_owned(), Arc::downgrade(&template));
    Some(template)
}

impl Selector {
    /// Reads a selector; a template that is not valid RFC 6570 is matched as an exact topic
    /// (as the protocol's reference hub does).
    pub fn new(text: &str) -> Selector {
        if text == "*" {
            return Selector::All;
        }
        match text.find('{').and_then(|brace| interned(text, brace)) {
            Some(template) => Selector::Template(template),
            None => Selector::Exact(text.to_owned()),
        }
    }

    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Selector::All => true,
            Selector::Exact(exact) => exact == topic,
            Selector::Template(template) => template.matches(topic),
        }
    }
}

/// Whether any of `selectors` matches any of `topics`.
pub fn any_matches<'t>(
    selectors: &[Selector],
    topics: impl Iterator<Item = &'t str> + Clone,
) -> bool {
    selectors
        .iter()
        .any(|s| topics.clone().any(|topic| s.matches(topic)))
}

/// Characters a simple expansion leaves as they are (unreserved), or a percent-escape.
const UNRESERVED: &str = r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})";
/// Those, the reserved characters too (`+` and `#` expansions).
const ANY: &str = r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})";

/// The regular expression a URI template's expansions match; `None` when it is not a
/// template (an unclosed brace, an unknown operator, a bad variable name).
fn template(text: &str) -> Option<Regex> {
    let mut pattern = String::from("^");
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        pattern.push_str(&regex::escape(&rest[..open]));
        let close = rest[open..].find('}')? + open;
        pattern.push_str(&expression(&rest[open + 1..close])?);
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return None;
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    Regex::new(&pattern).ok()
}

/// One `{...}` expression, without its braces.
fn expression(inside: &str) -> Option<String> {
    let (operator, variables) = match inside.chars().next()? {
        op @ ('+' | '#' | '.' | '/' | ';' | '?' | '&') => (Some(op), &inside[1..]),
        _ => (None, inside),
    };
    // Each variable: its name, and the longest value a prefix modifier (`{id:3}`) allows.
    let mut names = Vec::new();
    let mut longest = None;
    for variable in variables.split(',') {
        let variable = variable.trim_end_matches('*');
        let (name, prefix) = match variable.split_once(':') {
            Some((name, length)) => (name, Some(length.parse::<u16>().ok()?)),
            None => (variable, None),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '%';
        if name.is_empty() || !name.chars().all(valid) {
            return None;
        }
        names.push(regex::escape(name));
        longest = prefix.max(longest);
    }
    let value = match operator {
        Some('+' | '#') => ANY,
        _ => UNRESERVED,
    };
    // A prefix modifier bounds a lone variable's value; a list keeps any length.
    let run = match (longest, names.len()) {
        (Some(n), 1) => format!("{{0,{n}}}"),
        _ => "*".to_owned(),
    };
    // Each variable may be undefined (expanding to nothing), so every part is optional;
    // the forms that name their variables (`;`, `?`, `&`) name only these.
    let names = names.join("|");
    let part = |prefix: &str| format!("(?:{prefix}{value}{run})?");
    let pattern = match operator {
        None | Some('+') => format!("(?:{value}|,){run}"),
        Some('#') => format!("(?:#(?:{value}|,){run})?"),
        Some('.') => format!("(?:{})*", part(r"\.")),
        Some('/') => format!("(?:{})*", part("/")),
        Some(';') => format!("(?:;(?:{names})(?:={value}{run})?)*"),
        Some('?' | '&') => {
            let first = regex::escape(&operator.map(String::from).unwrap_or_default());
            let pair = format!("(?:{names})={value}{run}");
            format!("(?:{first}{pair}(?:&{pair})*)?")
        }
        Some(_) => return None,
    };
    Some(pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_as_the_protocol_says() {
        let all = Selector::new("*");
        assert!(all.matches("https://example.com/books/1"));
        let exact = Selector::new("https://example.com/books/1");
        assert!(exact.matches("https://example.com/books/1"));
        assert!(!exact.matches("https://example.com/books/12"));
        let simple = Selector::new("https://example.com/books/{id}");
        assert!(simple.matches("https://example.com/books/1"));
        assert!(simple.matches("https://example.com/books/a%20b"));
        assert!(!simple.matches("https://example.com/books/1/reviews"));
        assert!(!simple.matches("https://example.com/authors/1"));
        let reserved = Selector::new("https://example.com/{+path}");
        assert!(reserved.matches("https://example.com/books/1/reviews"));
        let segments = Selector::new("https://example.com{/a,b}");
        assert!(segments.matches("https://example.com/books/1"));
        let query = Selector::new("https://example.com/search{?q,lang}");
        assert!(query.matches("https://example.com/search?q=x&lang=fr"));
        assert!(query.matches("https://example.com/search"));
        assert!(
            !query.matches("https://example.com/search?admin=1"),
            "only its names"
        );
        let short = Selector::new("urn:isbn:{prefix:3}");
        assert!(short.matches("urn:isbn:978"));
        assert!(!short.matches("urn:isbn:9781"), "at most 3 characters");
        // Not a template: matched as written.
        let broken = Selector::new("https://example.com/{oops");
        assert!(broken.matches("https://example.com/{oops"));
        assert!(!broken.matches("https://example.com/x"));
        // Regex characters in the literal parts are literal.
        let dotted = Selector::new("urn:a.b:{id}");
        assert!(dotted.matches("urn:a.b:1"));
        assert!(!dotted.matches("urn:aXb:1"));
    }
}
