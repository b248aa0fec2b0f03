//! Capabilities: which operations a credential may perform on which resources, as in Ably's
//! capability objects (`{"orders:*": ["subscribe", "publish"]}`).
//!
//! Resources are named by what they are: a channel by its name, a configured API as
//! `api:{name}`, an ad-hoc polled target by its URL, a relay topic as `relay:{name}/{topic}`,
//! and the admin API as `admin`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::glob;

/// What a credential asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Subscribe,
    Publish,
    History,
    /// Stream a polled API.
    Poll,
    Admin,
    /// Enter a channel's presence, update one's data there, and leave it.
    Presence,
}

impl Operation {
    const ALL: [Operation; 6] = [
        Operation::Subscribe,
        Operation::Publish,
        Operation::History,
        Operation::Poll,
        Operation::Admin,
        Operation::Presence,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::Subscribe => "subscribe",
            Operation::Publish => "publish",
            Operation::History => "history",
            Operation::Poll => "poll",
            Operation::Admin => "admin",
            Operation::Presence => "presence",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Resource patterns with the operations each allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(Vec<(String, u8)>);

impl Capabilities {
    /// Reads `pattern → [operation, ...]`; `*` as an operation means all of them.
    pub fn parse(map: &BTreeMap<String, Vec<String>>) -> Result<Capabilities, String> {
        let mut patterns = Vec::with_capacity(map.len());
        for (pattern, operations) in map {
            let mut bits = 0;
            for operation in operations {
                bits |= match operation.as_str() {
                    "*" => Operation::ALL.iter().fold(0, |b, o| b | o.bit()),
                    name => Operation::ALL
                        .iter()
                        .find(|o| o.name() == name)
                        .ok_or_else(|| {
                            format!(
                                "{name:?} is not an operation; use subscribe, publish, history, \
                                 presence, poll, admin or *"
                            )
                        })?
                        .bit(),
                };
            }
            patterns.push((pattern.clone(), bits));
        }
        Ok(Capabilities(patterns))
    }

    /// Reads a token's capability claim: a JSON object, or a string holding one (as Ably
    /// writes `x-ably-capability`).
    pub fn from_claim(claim: &Value) -> Result<Capabilities, String> {
        let object = match claim {
            Value::String(text) => serde_json::from_str(text)
                .map_err(|_| "the capability claim is not a JSON object".to_owned())?,
            other => other.clone(),
        };
        let map: BTreeMap<String, Vec<String>> = serde_json::from_value(object).map_err(|_| {
            "the capability claim must map patterns to lists of operations".to_owned()
        })?;
        Capabilities::parse(&map)
    }

    pub fn allows(&self, operation: Operation, resource: &str) -> bool {
        self.0
            .iter()
            .any(|(pattern, bits)| bits & operation.bit() != 0 && glob::matches(pattern, resource))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(pairs: &[(&str, &[&str])]) -> Capabilities {
        let map = pairs
            .iter()
            .map(|(p, ops)| (p.to_string(), ops.iter().map(|o| o.to_string()).collect()))
            .collect();
        Capabilities::parse(&map).unwrap()
    }

    #[test]
    fn patterns_and_operations() {
        let c = caps(&[
            ("orders:*", &["subscribe", "publish"]),
            ("audit", &["history"]),
        ]);
        assert!(c.allows(Operation::Subscribe, "orders:eu"));
        assert!(c.allows(Operation::Publish, "orders:"));
        assert!(!c.allows(Operation::History, "orders:eu"));
        assert!(c.allows(Operation::History, "audit"));
        assert!(!c.allows(Operation::History, "audit2"));
        let all = caps(&[("*", &["*"])]);
        for op in Operation::ALL {
            assert!(all.allows(op, "anything"));
        }
    }

    #[test]
    fn bad_operations_and_claims_are_explained() {
        let map = [("x".to_string(), vec!["read".to_string()])].into();
        assert!(Capabilities::parse(&map).unwrap_err().contains("\"read\""));
        let claim = Value::String(r#"{"a":["subscribe"]}"#.into());
        assert!(
            Capabilities::from_claim(&claim)
                .unwrap()
                .allows(Operation::Subscribe, "a")
        );
        assert!(Capabilities::from_claim(&Value::String("nope".into())).is_err());
        assert!(Capabilities::from_claim(&serde_json::json!({"a": "subscribe"})).is_err());
    }
}
