//! The documents the subscribers of one topic hold, kept once for all of them.
//!
//! Every subscriber of a topic receives the same events, so its document goes through the
//! same states: a `data` event's text names the state it leads to, and a `patch` event's
//! text leads from one state to the next. Each state is computed once, by the first
//! subscriber to reach it (parsing the `data`, or applying the patch to a copy of the state
//! it starts from, all or nothing), and the others follow by looking the transition up. A
//! version reached two ways (patches, or a fresh `data` after falling behind) is one state
//! once the two documents are found equal; documents that differ are an error of the
//! gateway, reported as such.
//! Thousands of subscribers each parsing every event would need more CPU than the gateway
//! under test; this keeps the bench's cost per subscriber to reading and framing its stream.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::patch::LiveDocument;
use crate::wire::sse_parser::SseEvent;

/// How many states of a topic are remembered. A subscriber this many versions behind the
/// newest one is reported as dropped, not followed.
const KEPT: usize = 64;

/// A state: the document's version and when the simulated API made it (ms since the epoch).
pub type Stamp = (u64, f64);

#[derive(Default)]
pub struct TopicDocuments {
    states: Mutex<States>,
}

#[derive(Default)]
struct States {
    next_id: u64,
    by_id: HashMap<u64, State>,
    /// Ids by age, oldest first.
    order: VecDeque<u64>,
    /// The state each `data` text leads to.
    data: HashMap<String, u64>,
    /// The state holding each version.
    versions: HashMap<u64, u64>,
}

struct State {
    document: LiveDocument,
    stamp: Stamp,
    /// The states this one's patches lead to, by the patch's text.
    patches: HashMap<String, u64>,
}

impl TopicDocuments {
    /// The state a subscriber in state `from` reaches with `event`, and its stamp;
    /// `Ok(None)` for an event that does not change the document (errors, heartbeats).
    pub fn follow(
        &self,
        from: Option<u64>,
        event: &SseEvent,
    ) -> Result<Option<(u64, Stamp)>, String> {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let known = match (event.event.as_str(), from) {
            ("data", _) => states.data.get(&event.data).copied(),
            ("patch", Some(from)) => match states.by_id.get(&from) {
                Some(state) => state.patches.get(&event.data).copied(),
                None => return Err("a subscriber fell more than 64 versions behind".into()),
            },
            ("patch", None) => return Err("a patch came before any document".into()),
            _ => return Ok(None),
        };
        if let Some(id) = known {
            return Ok(states.by_id.get(&id).map(|state| (id, state.stamp)));
        }
        let mut document = match from.and_then(|id| states.by_id.get(&id)) {
            Some(state) if event.event == "patch" => state.document.clone(),
            _ => LiveDocument::default(),
        };
        document.apply(event)?;
        let stamp = document
            .get()
            .and_then(|d| Some((d.get("version")?.as_u64()?, d.get("sentAt")?.as_f64()?)))
            .ok_or(
                "a document lacks its version or sentAt: is the gateway polling the simulated API?",
            )?;
        let id = match states.versions.get(&stamp.0).copied() {
            Some(id) => {
                let same = states.by_id.get(&id).map(|s| s.document.get()) == Some(document.get());
                if !same {
                    return Err(format!(
                        "version {} reached by a {} event differs from the same version \
                         reached before",
                        stamp.0, event.event
                    ));
                }
                id
            }
            None => states.insert(document, stamp),
        };
        match from.and_then(|from| states.by_id.get_mut(&from)) {
            Some(state) if event.event == "patch" => {
                state.patches.insert(event.data.clone(), id);
            }
            _ => {
                states.data.insert(event.data.clone(), id);
            }
        }
        Ok(Some((id, stamp)))
    }
}

impl States {
    fn insert(&mut self, document: LiveDocument, stamp: Stamp) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.by_id.insert(
            id,
            State {
                document,
                stamp,
                patches: HashMap::new(),
            },
        );
        self.order.push_back(id);
        self.versions.insert(stamp.0, id);
        while self.order.len() > KEPT {
            if let Some(old) = self.order.pop_front()
                && let Some(state) = self.by_id.remove(&old)
            {
                self.data.retain(|_, to| *to != old);
                self.versions.remove(&state.stamp.0);
            }
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> SseEvent {
        SseEvent {
            event: name.into(),
            data: data.into(),
            id: String::new(),
            retry: None,
        }
    }

    #[test]
    fn subscribers_in_one_state_share_its_transitions() {
        let topic = TopicDocuments::default();
        let data = event("data", r#"{"version":1,"sentAt":10.5,"items":[]}"#);
        let (a, stamp) = topic.follow(None, &data).unwrap().unwrap();
        assert_eq!(stamp, (1, 10.5));
        assert_eq!(topic.follow(None, &data).unwrap().unwrap().0, a);
        let patch = event(
            "patch",
            r#"[{"op":"replace","path":"/version","value":2},{"op":"replace","path":"/sentAt","value":11}]"#,
        );
        let (b, stamp) = topic.follow(Some(a), &patch).unwrap().unwrap();
        assert_eq!(stamp, (2, 11.0));
        assert_ne!(a, b);
        assert_eq!(topic.follow(Some(a), &patch).unwrap().unwrap().0, b);
        // A patch that does not apply is an error, never a state.
        let bad = event("patch", r#"[{"op":"remove","path":"/missing"}]"#);
        assert!(topic.follow(Some(b), &bad).is_err());
        // Version 2 as a fresh `data` is the same state; with other items, an error.
        let fresh = event("data", r#"{"sentAt":11,"version":2,"items":[]}"#);
        assert_eq!(topic.follow(Some(a), &fresh).unwrap().unwrap().0, b);
        let wrong = event("data", r#"{"version":2,"sentAt":11,"items":[1]}"#);
        assert!(topic.follow(Some(b), &wrong).is_err());
        assert_eq!(
            topic.follow(Some(b), &event("heartbeat", "")).unwrap(),
            None
        );
    }
}
